package process

import (
	"bytes"
	"debug/elf"
	"os"
	"testing"
	"unsafe"

	"github.com/bprof/bprof/internal/testenv"
)

func TestMemorySelf(t *testing.T) {
	testenv.RequireRoot(t)
	var word uint64 = 0x0102030405060708
	buf := []byte("hello, memory")
	for _, fallback := range []bool{false, true} {
		mem := NewMemory(os.Getpid())
		mem.fallback = fallback
		if v, err := mem.Uint64(uint64(uintptr(unsafe.Pointer(&word)))); err != nil || v != word {
			t.Errorf("fallback %v: Uint64 = %#x, %v", fallback, v, err)
		}
		got := make([]byte, len(buf))
		if n, err := mem.ReadAt(got, int64(uintptr(unsafe.Pointer(&buf[0])))); err != nil || n != len(buf) || string(got) != string(buf) {
			t.Errorf("fallback %v: ReadAt = %d, %q, %v", fallback, n, got, err)
		}
		if _, err := mem.Uint32(8); err == nil {
			t.Errorf("fallback %v: read at address 8: no error", fallback)
		}
		if _, err := mem.ReadAt(got, -1); err == nil {
			t.Errorf("fallback %v: read at a negative address: no error", fallback)
		}
		if err := mem.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestReadVDSO(t *testing.T) {
	img, err := ReadVDSO()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("the vDSO image is not ELF: %v", err)
	}
	if f.Section(".eh_frame") == nil {
		t.Errorf("the vDSO has no .eh_frame")
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range syms {
		found = found || s.Name == "__vdso_clock_gettime"
	}
	if !found {
		t.Errorf("no __vdso_clock_gettime among the vDSO's %d symbols", len(syms))
	}
}

func TestReadWords(t *testing.T) {
	testenv.RequireRoot(t)
	words := make([]uint64, 1500)   // more than one system call's 1024
	t.Cleanup(func() { _ = words }) // on the heap, where it does not move
	for i := range words {
		words[i] = uint64(i) * 0x0101010101
	}
	at := func(i int) uint64 { return uint64(uintptr(unsafe.Pointer(&words[i]))) }
	byAddr := map[uint64]uint64{}
	for i := range words {
		byAddr[at(i)] = words[i]
	}
	all := make([]uint64, len(words))
	for i := range all {
		all[i] = at(len(words) - 1 - i) // out of order
	}
	tests := []struct {
		name    string
		addrs   []uint64
		want    int
		wantErr bool
	}{
		{"none", nil, 0, false},
		{"one", []uint64{at(3)}, 1, false},
		{"many", all, len(all), false},
		{"unmapped first", []uint64{8, at(1)}, 0, true},
		{"unmapped in the middle", []uint64{at(1), at(2), 8, at(4)}, 2, true},
		{"unmapped past the first call", append(append([]uint64{}, all[:1100]...), 8), 1100, true},
	}
	for _, fallback := range []bool{false, true} {
		for _, tt := range tests {
			mem := NewMemory(os.Getpid())
			mem.fallback = fallback
			out := make([]uint64, len(tt.addrs))
			n, err := mem.ReadWords(tt.addrs, out)
			if n != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("fallback %v, %s: ReadWords = %d, %v; want %d, error %v", fallback, tt.name, n, err, tt.want, tt.wantErr)
			}
			for i := range out[:n] {
				if want := byAddr[tt.addrs[i]]; out[i] != want {
					t.Errorf("fallback %v, %s: word %d = %#x, want %#x", fallback, tt.name, i, out[i], want)
				}
			}
			mem.Close()
		}
	}
	if _, err := NewMemory(os.Getpid()).ReadWords([]uint64{at(0), at(1)}, make([]uint64, 1)); err == nil {
		t.Error("ReadWords with too short an out: no error")
	}
}
