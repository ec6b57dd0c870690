package main

import (
	"errors"
	"testing"
)

func TestBisectSpin(t *testing.T) {
	want := pingpongRate * 1.04
	for _, tc := range []struct {
		name     string
		hi, step int
		rate     func(spin int) float64
		lo, upto int // the answer's bounds
	}{
		// The rate falls by 1 switch/s per spin from want+1000: crosses at 1000.
		{"linear", 400000, 500, func(s int) float64 { return want + 1000 - float64(s) }, 500, 1000},
		{"fine step", 4000, 10, func(s int) float64 { return want + 1000 - float64(s) }, 990, 1000},
		{"never fast enough", 4000, 10, func(int) float64 { return 0 }, 0, 0},
		{"always fast", 4000, 10, func(int) float64 { return 2 * want }, 3990, 4000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bisectSpin(tc.hi, tc.step, func(s int) (float64, error) { return tc.rate(s), nil })
			if err != nil || got < tc.lo || got > tc.upto {
				t.Errorf("bisectSpin = %d, %v; want %d to %d", got, err, tc.lo, tc.upto)
			}
		})
	}
	boom := errors.New("boom")
	if _, err := bisectSpin(4000, 10, func(int) (float64, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Errorf("error %v, want the rate's", err)
	}
}
