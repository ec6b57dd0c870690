package export

import (
	"testing"
	"time"

	"github.com/bprof/bprof/pkg/symbolize"
)

func TestStack(t *testing.T) {
	libc := &symbolize.Module{Path: "/usr/lib/libc.so.6", Start: 0x7f0000, Limit: 0x7f9000}
	a := []symbolize.Frame{
		{Kind: symbolize.KindNative, Name: "write", Module: libc, Addr: 0x7f1234},
		{Kind: symbolize.KindPython, Name: "main", File: "/srv/main.py", Line: 3, StartLine: 1},
	}
	b := []symbolize.Frame{a[1]}
	other := NewBuilder(Options{Rate: 100})
	for _, tc := range []struct {
		name        string
		x, y        []symbolize.Frame
		same        bool
		wantSamples int
	}{
		{name: "equal frames, one stack", x: a, y: append([]symbolize.Frame(nil), a...), same: true, wantSamples: 1},
		{name: "different frames, two stacks", x: a, y: b, same: false, wantSamples: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bl := NewBuilder(Options{Rate: 100})
			sx, sy := bl.Stack(tc.x), bl.Stack(tc.y)
			if (sx == sy) != tc.same {
				t.Fatalf("Stack(x) == Stack(y) is %v, want %v", sx == sy, tc.same)
			}
			if !bl.Holds(sx) || other.Holds(sx) {
				t.Fatalf("Holds: own %v, other builder's %v; want true, false", bl.Holds(sx), other.Holds(sx))
			}
			l := Labels{PID: 1, TID: 1}
			bl.AddCPUStack(sx, l, 1)
			bl.AddCPUStack(sy, l, 2)
			bl.AddCPU(tc.x, l, 4) // by frames: the same sample as by its Stack
			start := time.Unix(1700000000, 0)
			p := bl.Profile(start, start.Add(time.Second))
			if len(p.Sample) != tc.wantSamples {
				t.Fatalf("%d samples, want %d", len(p.Sample), tc.wantSamples)
			}
			var total int64
			for _, s := range p.Sample {
				total += s.Value[0]
			}
			if total != 7 {
				t.Errorf("%d samples counted, want 7", total)
			}
		})
	}
}
