package export

import (
	"testing"
	"time"

	"github.com/bprof/bprof/pkg/symbolize"
)

// TestSetOnCPU: a thread's measured on-CPU time replaces a period per sample
// in its on-CPU samples' wall values, shared by sample count, and adds up
// exactly; uncaptured preemptions are spread over the same stacks.
func TestSetOnCPU(t *testing.T) {
	f := func(name string) []symbolize.Frame {
		return []symbolize.Frame{{Kind: symbolize.KindPython, Name: name, File: "a.py", Line: 1}}
	}
	thread := Labels{PID: 1, TID: 2, ThreadName: "w"}
	for _, tc := range []struct {
		name     string
		add      func(b *Builder)
		wantWall map[string]int64 // by leaf name and state
	}{
		{"no measure keeps a period per sample", func(b *Builder) {
			b.AddCPU(f("a"), thread, 3)
		}, map[string]int64{"a": 30_000_000}},
		{"measured time shared by count", func(b *Builder) {
			b.AddCPU(f("a"), thread, 3)
			b.AddCPU(f("b"), thread, 1)
			b.SetOnCPU(thread, 41_000_001)
		}, map[string]int64{"a": 30_750_000, "b": 10_250_001}},
		{"ran but never sampled", func(b *Builder) {
			b.SetOnCPU(thread, 7_000_000)
		}, map[string]int64{"[on-cpu: not sampled]": 7_000_000}},
		{"uncaptured preemptions over the on-CPU stacks", func(b *Builder) {
			b.AddCPU(f("a"), thread, 1)
			b.AddCPU(f("b"), thread, 3)
			b.SetOnCPU(thread, 40_000_000)
			b.AddRunqueue(thread, 8_000_000)
		}, map[string]int64{"a": 10_000_000, "b": 30_000_000, "runqueue a": 2_000_000, "runqueue b": 6_000_000}},
		{"uncaptured preemptions of a thread never sampled", func(b *Builder) {
			b.AddRunqueue(thread, 5)
		}, map[string]int64{"runqueue [off-cpu: stack not captured]": 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder(Options{Rate: 100, Wall: true})
			tc.add(b)
			p := b.Profile(time.Unix(0, 0), time.Unix(1, 0))
			if err := p.CheckValid(); err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			for _, s := range p.Sample {
				k := s.Location[0].Line[0].Function.Name
				if st := s.Label["state"]; len(st) > 0 {
					k = st[0] + " " + s.Location[1].Line[0].Function.Name
				}
				got[k] += s.Value[2]
			}
			if len(got) != len(tc.wantWall) {
				t.Errorf("wall by stack %v, want %v", got, tc.wantWall)
			}
			for k, v := range tc.wantWall {
				if got[k] != v {
					t.Errorf("wall of %q = %d, want %d (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}
