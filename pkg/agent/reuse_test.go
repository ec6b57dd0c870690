package agent

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestPIDReused: when a target's PID comes back as another process, the
// old process's last batch is shipped as final and the new process starts a
// target of its own, both on registration and at a period's end.
func TestPIDReused(t *testing.T) {
	for _, how := range []string{"registered again", "period end"} {
		t.Run(how, func(t *testing.T) {
			src := newFakeSource(false)
			sink := &memSink{}
			opts := Options{Period: 200 * time.Millisecond, PIDs: []int{1001}, Sinks: []Sink{sink}, Source: src}
			a, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			var start atomic.Uint64
			start.Store(1)
			a.alive = func(int) bool { return true }
			a.startTime = func(int) uint64 { return start.Load() }
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			defer a.Stop()
			waitFor(t, "samples of the first process", func() bool { return src.Total() > 0 })
			start.Store(2) // pid 1001 exits and a new process gets it
			if how == "registered again" {
				if err := a.Register(1001, Target{ApplicationName: "second"}); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the first process's final batch", func() bool {
				for _, b := range sink.all() {
					if b.Final {
						return true
					}
				}
				return false
			})
			if how == "registered again" {
				waitFor(t, "a batch of the second process", func() bool {
					bs := sink.all()
					return len(bs) > 0 && bs[len(bs)-1].ApplicationName == "second"
				})
			}
			finals := 0
			for _, b := range sink.all() {
				if b.Final {
					finals++
				}
			}
			if finals != 1 {
				t.Errorf("%d final batches, want the first process's only", finals)
			}
		})
	}
}
