package sampler

import (
	"slices"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
)

// TestTargetBits: the kernel's bitmap holds exactly the targets, whatever
// the order of adds and removes, with PIDs sharing a word and at the ends.
func TestTargetBits(t *testing.T) {
	testenv.RequireRoot(t)
	s, err := New(Config{Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	type op struct {
		add bool
		pid int
	}
	for _, tc := range []struct {
		name string
		ops  []op
		want []int
	}{
		{"one", []op{{true, 130}}, []int{130}},
		{"same word", []op{{true, 128}, {true, 191}, {true, 150}}, []int{128, 150, 191}},
		{"remove one of a word", []op{{true, 128}, {true, 150}, {false, 128}}, []int{150}},
		{"remove all", []op{{true, 64}, {false, 64}}, nil},
		{"remove unknown", []op{{false, 77}}, nil},
		{"ends", []op{{true, 1}, {true, maxPID - 1}}, []int{1, maxPID - 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, o := range tc.ops {
				var err error
				if o.add {
					err = s.AddTarget(o.pid)
				} else {
					err = s.RemoveTarget(o.pid)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			var got []int
			var bits uint64
			for w := uint32(0); w < maxPID/64; w++ {
				if err := s.objs.Targets.Lookup(w, &bits); err != nil {
					t.Fatal(err)
				}
				for b := 0; b < 64; b++ {
					if bits>>b&1 != 0 {
						got = append(got, int(w)*64+b)
					}
				}
			}
			listed, _ := s.Targets()
			if !slices.Equal(got, tc.want) || !slices.Equal(listed, tc.want) {
				t.Errorf("bits for %v, Targets() %v, want %v", got, listed, tc.want)
			}
			for _, pid := range tc.want {
				s.RemoveTarget(pid)
			}
		})
	}
	if err := s.AddTarget(maxPID); err == nil {
		t.Errorf("AddTarget(%d) succeeded, want an error", maxPID)
	}
}
