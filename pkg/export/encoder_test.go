package export

import (
	"bytes"
	"testing"
	"time"

	"github.com/bprof/bprof/pkg/symbolize"
	"github.com/google/pprof/profile"
)

func TestEncoder(t *testing.T) {
	var e Encoder
	start := time.Unix(1700000000, 0)
	for _, n := range []int{1, 50, 3} { // the compressor is used again, for larger and smaller profiles
		b := NewBuilder(Options{Rate: 100})
		for i := range n {
			b.AddCPU([]symbolize.Frame{{Kind: symbolize.KindPython, Name: "f", File: "/a.py", Line: int64(i)}}, Labels{PID: 1, TID: 1}, 1)
		}
		want := b.Profile(start, start.Add(time.Second))
		var buf bytes.Buffer
		if err := e.Encode(&buf, want); err != nil {
			t.Fatal(err)
		}
		got, err := profile.Parse(&buf)
		if err != nil {
			t.Fatalf("%d samples: read back: %v", n, err)
		}
		if len(got.Sample) != n || got.DurationNanos != int64(time.Second) {
			t.Errorf("%d samples: read back %d samples over %d ns", n, len(got.Sample), got.DurationNanos)
		}
	}
}
