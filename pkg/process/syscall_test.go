package process

import (
	"errors"
	"strings"
	"testing"
)

func TestParseBlocked(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Blocked
		err  string
	}{
		{"230 0x1 0x1 0x7ffd3b967010 0x0 0x0 0x0 0x7ffd3b966fd0 0x7f9ffa2ed545\n", Blocked{230, 0x7ffd3b966fd0, 0x7f9ffa2ed545}, ""},
		{"-1 0x7ffd3b966fd0 0x401000\n", Blocked{-1, 0x7ffd3b966fd0, 0x401000}, ""},
		{"running\n", Blocked{}, "thread is running"},
		{"", Blocked{}, "want 3 or 9 fields"},
		{"7 0x1 0x2\n", Blocked{}, "bad system call number"},
		{"x 0 0 0 0 0 0 0x1 0x2", Blocked{}, "bad system call number"},
		{"1 0 0 0 0 0 0 zz 0x2", Blocked{}, "bad stack pointer"},
		{"1 0 0 0 0 0 0 0x1 0xg", Blocked{}, "bad program counter"},
	} {
		got, err := ParseBlocked([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseBlocked(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseBlocked(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	if _, err := ParseBlocked([]byte("running")); !errors.Is(err, ErrRunning) {
		t.Errorf("running: %v, want ErrRunning", err)
	}
}

func FuzzParseBlocked(f *testing.F) {
	f.Add([]byte("230 0x1 0x1 0x7ffd3b967010 0x0 0x0 0x0 0x7ffd3b966fd0 0x7f9ffa2ed545\n"))
	f.Add([]byte("-1 0x7ffd3b966fd0 0x401000\n"))
	f.Add([]byte("running\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		bl, err := ParseBlocked(b)
		if err == nil && bl.Syscall < -1 {
			t.Errorf("accepted syscall %d", bl.Syscall)
		}
	})
}
