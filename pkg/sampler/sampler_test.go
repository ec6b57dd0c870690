package sampler

import (
	"errors"
	"math"
	"os/exec"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/process"
)

func TestSampleBusyProcess(t *testing.T) {
	testenv.RequireRoot(t)
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	s, err := New(Config{Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddTarget(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	ran0, _ := process.RunTime(pid, pid)
	began := time.Now()
	deadline := began.Add(2 * time.Second)
	n := 0
	check := func(smp Sample) {
		if smp.PID != cmd.Process.Pid || smp.Kind != KindCPU {
			t.Fatalf("sample of pid %d kind %d, want pid %d cpu", smp.PID, smp.Kind, cmd.Process.Pid)
		}
		if len(smp.User) == 0 && len(smp.Kernel) == 0 {
			t.Fatalf("sample with no stack: %+v", smp)
		}
		n++
	}
	for time.Now().Before(deadline) {
		smp, err := s.Read()
		if err != nil {
			t.Fatal(err)
		}
		check(smp)
	}
	// Samples wait in the ring up to a poll's interval: Flush drains them.
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		smp, err := s.Read()
		if errors.Is(err, ErrFlushed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		check(smp)
	}
	ran1, _ := process.RunTime(pid, pid)
	span := time.Since(began).Seconds()
	st, _ := s.Stats()
	// A 100 Hz tick lands on the thread with the probability q that it is on
	// that CPU: over the span's ticks the count is binomial, σ = √(n·q·(1−q));
	// allow 4σ and a tick at each end. (A sample taken as Flush ran may still
	// be in the ring: the bound is one-sided.)
	ran := float64(ran1-ran0) / 1e9
	q := math.Min(1, ran/span)
	want := ran * 100
	tol := 4*math.Sqrt(span*100*q*(1-q)) + 2
	t.Logf("%d samples in %.2f s, in which the target ran %.2f s: want %.0f − %.1f; stats %+v", n, span, ran, want, tol, st)
	if float64(n) < want-tol {
		t.Fatalf("%d samples in %.2f s of a thread that ran %.2f s at 100 Hz, want at least %.0f", n, span, ran, want-tol)
	}
}
