package ksym

import "testing"

func int8s(s string, size int) []int8 {
	buf := make([]int8, size)
	for i := 0; i < len(s) && i < size; i++ {
		buf[i] = int8(s[i])
	}
	return buf
}

func TestSymbolName(t *testing.T) {
	tests := []struct {
		name    string
		printed string
		n       int64 // bpf_snprintf's return
		size    int
		want    string
	}{
		{"kernel symbol", "do_syscall_64", 14, 256, "do_syscall_64"},
		{"module symbol", "nft_do_chain [nf_tables]", 25, 256, "nft_do_chain [nf_tables]"},
		{"no symbol: the address in hex", "0xffffffffc0001000", 19, 256, ""},
		{"print failed", "", -22, 256, ""},
		{"empty", "", 1, 256, ""},
		{"cut at the buffer's end", "a_very_long_name\x00", 40, 8, "a_very_"},
		{"a function's padding is the function's", "__pfx_schedule", 15, 256, "schedule"},
		{"stops at the NUL", "schedule\x00junk", 9, 256, "schedule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := symbolName(int8s(tt.printed, tt.size), tt.n); got != tt.want {
				t.Errorf("symbolName(%q, %d) = %q, want %q", tt.printed, tt.n, got, tt.want)
			}
		})
	}
}

func FuzzSymbolName(f *testing.F) {
	f.Add([]byte("do_syscall_64\x00"), int64(14))
	f.Add([]byte("nft_do_chain [nf_tables]\x00"), int64(25))
	f.Add([]byte("0xffffffffc0001000\x00"), int64(19))
	f.Add([]byte("cut"), int64(300))
	f.Fuzz(func(t *testing.T, printed []byte, n int64) {
		buf := make([]int8, len(printed))
		for i, c := range printed {
			buf[i] = int8(c)
		}
		s := symbolName(buf, n)
		if len(s) >= max(len(buf), 1) {
			t.Errorf("name %q is longer than its %d-byte buffer allows", s, len(buf))
		}
	})
}
