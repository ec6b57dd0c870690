package process

import (
	"os"
	"testing"
)

func TestParseSchedstat(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"4692723062 2083724914 5961\n", 4692723062, false},
		{"0 0 0", 0, false},
		{"", 0, true},
		{"x 1 2", 0, true},
		{"-5 1 2", 0, true},
	} {
		got, err := ParseSchedstat([]byte(tt.in))
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseSchedstat(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestRunTimeSelf(t *testing.T) {
	pid := os.Getpid()
	a, err := RunTime(pid, pid)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1e7; i++ {
	}
	b, err := RunTime(pid, pid)
	if err != nil || b < a {
		t.Fatalf("run time went from %d to %d (%v)", a, b, err)
	}
}
