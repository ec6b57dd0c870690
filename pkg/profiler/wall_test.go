package profiler

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/google/pprof/profile"
)

// TestWallFourThreads: one thread on the CPU, one sleeping, one waiting on a
// queue, one blocked reading a pipe. Each thread's wall time adds up to the
// recording's span; the sleeper's is under its function and time.sleep's
// frames; the CPU profile is the busy thread's.
func TestWallFourThreads(t *testing.T) {
	var py *interpreter
	for _, cand := range interpreters(t) {
		if cand.minor == 11 && cand.chroot == "" {
			py = &cand
			break
		}
	}
	if py == nil {
		testenv.Skip(t, "no CPython 3.11")
	}
	proc := startScript(t, *py, "wall.py", "10")
	testenv.RequireRoot(t)
	s, err := NewSession(Options{OffCPU: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Add(proc.Cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	release(t, proc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	p, _, _ := s.Cut()
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	cpuIdx, wallIdx := typeIndex(t, p, "cpu"), typeIndex(t, p, "wall")
	span := float64(p.DurationNanos)

	// Tell the threads apart by the Python function each runs.
	role := map[int64]string{}
	for _, smp := range p.Sample {
		for _, r := range []string{"busy", "sleeper", "waiter", "reader"} {
			if hasFrame(smp, r) {
				role[smp.NumLabel["thread_id"][0]] = r
			}
		}
	}
	wall := map[string]float64{}
	cpu := map[string]float64{}
	noStack := map[string]float64{}
	var cpuTotal, sleeperInSleep, sleeperNanosleep, sleeperGIL float64
	for _, smp := range p.Sample {
		r := role[smp.NumLabel["thread_id"][0]]
		wall[r] += float64(smp.Value[wallIdx])
		cpu[r] += float64(smp.Value[cpuIdx])
		cpuTotal += float64(smp.Value[cpuIdx])
		if hasFrame(smp, "[off-cpu: stack not captured]") || hasFrame(smp, "[off-cpu: stack not kept]") {
			noStack[r] += float64(smp.Value[wallIdx])
		}
		if r == "sleeper" && len(smp.Label["state"]) == 1 && smp.Label["state"][0] == "gil" {
			sleeperGIL += float64(smp.Value[wallIdx])
		}
		// time.sleep waits in clock_nanosleep, then for the GIL (a futex)
		// before it returns: both are its kernel frames under sleeper.
		if r == "sleeper" && hasFrame(smp, "sleeper") && hasFrame(smp, "schedule") {
			sleeperInSleep += float64(smp.Value[wallIdx])
			if hasFrame(smp, "do_nanosleep") && hasFrame(smp, "clock_nanosleep") {
				sleeperNanosleep += float64(smp.Value[wallIdx])
			}
		}
	}
	for _, r := range []string{"busy", "sleeper", "waiter", "reader"} {
		t.Logf("%s: wall %.3f s of %.3f s, cpu %.3f s, %.2f%% with no stack", r, wall[r]/1e9, span/1e9, cpu[r]/1e9, 100*noStack[r]/wall[r])
		if noStack[r] > 0.02*wall[r] {
			t.Errorf("%s: %.2f%% of its wall time has no stack, want at most 2%%", r, 100*noStack[r]/wall[r])
		}
		// Wall time is measured, not sampled (docs/ARCHITECTURE.md): the
		// kernel's on-CPU time and waits of a thread split at the span's ends
		// add up to the span but for the microseconds between reading the
		// clock and the kernel seeing the change, far below 1 %.
		if math.Abs(wall[r]-span) > 0.01*span {
			t.Errorf("%s: wall %.3f s, want the span %.3f s ± 1%%", r, wall[r]/1e9, span/1e9)
		}
	}
	t.Logf("sleeper: %.1f%% of its wall time off the CPU under sleeper, %.1f%% in nanosleep (kernel and libc frames)",
		100*sleeperInSleep/wall["sleeper"], 100*sleeperNanosleep/wall["sleeper"])
	if sleeperInSleep < 0.95*wall["sleeper"] {
		t.Errorf("sleeper: %.1f%% of its wall time off the CPU under sleeper and time.sleep's kernel frames, want ≥ 95%%", 100*sleeperInSleep/wall["sleeper"])
	}
	// Each 50 ms sleep is followed by a wait for the GIL, which grows when the
	// busy thread holding it is itself waiting for a CPU: so only the two
	// together are a fixed share of the sleeper's life.
	if sleeperNanosleep+sleeperGIL < 0.95*wall["sleeper"] {
		t.Errorf("sleeper: %.1f%% of its wall time in nanosleep and %.1f%% waiting for the GIL, want ≥ 95%% together",
			100*sleeperNanosleep/wall["sleeper"], 100*sleeperGIL/wall["sleeper"])
	}
	// The sleeper takes the GIL back from the busy thread after every sleep:
	// a wait of up to the 5 ms switch interval, named by take_gil and
	// PyEval_RestoreThread (pyenv's interpreter keeps its symbols).
	t.Logf("sleeper: %.1f%% of its wall time waiting for the GIL", 100*sleeperGIL/wall["sleeper"])
	if sleeperGIL == 0 {
		t.Errorf("sleeper: no wall time with state=gil")
	}
	if cpu["busy"] < 0.9*cpuTotal {
		t.Errorf("busy thread has %.1f%% of the CPU time, want ≥ 90%%", 100*cpu["busy"]/cpuTotal)
	}
}

func typeIndex(t *testing.T, p *profile.Profile, typ string) int {
	t.Helper()
	for i, st := range p.SampleType {
		if st.Type == typ {
			return i
		}
	}
	t.Fatalf("no %s sample type in %v", typ, p.SampleType)
	return -1
}
