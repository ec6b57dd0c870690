package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

type agentResult struct {
	threads     int
	span        time.Duration
	cpu         time.Duration // bprof's user+sys time over its whole life
	cpuShare    float64       // of one core, per busy thread, over its whole life
	steady      time.Duration // the window of steadyCPU
	steadyCPU   time.Duration // run time of all bprof's threads once it records
	steadyShare float64       // of one core, per busy thread, once it records
	maxRSS      int64         // bytes
	samples     string
	// switchesPerSec is the target's voluntary context switches a second
	// over the steady window, for the switching workload (0 otherwise).
	switchesPerSec float64
}

// switchSpin is the spin of testdata/python/pingpong.py that brings it to
// ~5,000 context switches a second here (the rate is measured and reported).
const switchSpin = 10000

// agentCost runs `bin/bprof record` against busy threads and reads its rusage.
func agentCost(python string, threads int, d time.Duration) (agentResult, error) {
	cmd, err := startWorkload(python, 16, threads, d)
	if err != nil {
		return agentResult{}, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	return recordCost(cmd.Process.Pid, threads, d)
}

// switchingCost is agentCost on testdata/python/pingpong.py, two threads that
// hand a byte and the GIL to each other thousands of times a second: one
// CPU's worth of work between them, counted as one busy thread.
func switchingCost(python string, d time.Duration) (agentResult, error) {
	cmd := exec.Command(python, pingpongPy, fmt.Sprint(switchSpin))
	if err := cmd.Start(); err != nil {
		return agentResult{}, fmt.Errorf("pingpong.py: %w", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	before := voluntarySwitches(cmd.Process.Pid)
	t0 := time.Now()
	res, err := recordCost(cmd.Process.Pid, 1, d)
	res.switchesPerSec = float64(voluntarySwitches(cmd.Process.Pid)-before) / time.Since(t0).Seconds()
	return res, err
}

// workload names what was recorded, for the goals and notes.
func (a agentResult) workload() string {
	if a.switchesPerSec > 0 {
		return fmt.Sprintf("2 threads switching %.0f times/s", a.switchesPerSec)
	}
	return threadCount(a.threads)
}

// voluntarySwitches sums the voluntary context switches of pid's threads.
func voluntarySwitches(pid int) int64 {
	v, _ := switchCounts(pid)
	return v
}

// recordCost records pid for d, with threads busy threads, and measures bprof.
func recordCost(pid, threads int, d time.Duration) (agentResult, error) {
	res := agentResult{threads: threads, span: d}
	out := filepath.Join(os.TempDir(), "bprof-bench.pb.gz")
	defer os.Remove(out)
	var stderr lockedBuffer
	rec, err := startMeasured(-1, []string{"bin/bprof", "record", "-p", fmt.Sprint(pid), "-d", d.String(), "-o", out}, nil, &stderr, "")
	if err != nil {
		return res, err
	}
	// Steady state: from a second after record says it records (its
	// start-up over) to a second before its duration ends, by the
	// scheduler's nanosecond clock of all its threads.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stderr.String(), "bprof: recording") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if ready := time.Now(); strings.Contains(stderr.String(), "bprof: recording") && d > 4*time.Second {
		time.Sleep(time.Second)
		from, cpuFrom := time.Now(), onCPU(rec.child)
		time.Sleep(time.Until(ready.Add(d - time.Second)))
		res.steadyCPU, res.steady = onCPU(rec.child)-cpuFrom, time.Since(from)
		res.steadyShare = res.steadyCPU.Seconds() / res.steady.Seconds() / float64(threads)
	}
	if err := rec.cmd.Wait(); err != nil {
		return res, fmt.Errorf("bprof record: %v: %s", err, stderr.String())
	}
	res.cpu, res.maxRSS = rec.usage()
	res.cpuShare = res.cpu.Seconds() / d.Seconds() / float64(threads)
	if m := regexp.MustCompile(`(\d+) samples from (\d+) threads`).FindString(stderr.String()); m != "" {
		res.samples = m
	}
	return res, nil
}

func (r *report) writeAgent(b *strings.Builder) {
	if len(r.agent) == 0 {
		return
	}
	b.WriteString("\n## bprof's own CPU and memory while recording\n\n")
	fmt.Fprintf(b, "`bin/bprof record -p PID -d %s -o FILE` (CPU and wall) on N busy threads of `testdata/python/depth.py 16 SECONDS N`,\n"+
		"all on one CPU (so 100 samples a second between them). *Steady* is the run time of all bprof's threads\n"+
		"(/proc/PID/task/*/schedstat) from a second after it says `recording` to a second before its end; *whole life*\n"+
		"is its user+sys (rusage), start-up and writing the profile included. The last row records\n"+
		"`testdata/python/pingpong.py`, two threads handing a byte and the GIL to each other (the issue's target at\n"+
		"5,000 context switches a second; its rate, measured over the run, is in the row), as one busy thread.\n\n", 3*r.cfg.duration)
	b.WriteString("| busy threads | steady CPU | steady, per busy thread | whole-life CPU | whole life, per busy thread | peak RSS | goal | met |\n|---|---|---|---|---|---|---|---|\n")
	for _, a := range r.agent {
		busy := fmt.Sprint(a.threads)
		if a.switchesPerSec > 0 {
			busy = fmt.Sprintf("1 (`pingpong.py %d`: 2 threads, %.0f switches/s)", switchSpin, a.switchesPerSec)
		}
		fmt.Fprintf(b, "| %s | %s over %s | %.3f %% | %s | %.3f %% | %.1f MB | ≤ 0.2 %% / thread steady, ≤ 24 MB | %s |\n", busy,
			a.steadyCPU.Round(time.Millisecond), a.steady.Round(time.Second), a.steadyShare*100, a.cpu.Round(time.Millisecond),
			a.cpuShare*100, float64(a.maxRSS)/1e6, yes(a.steadyShare <= 0.002 && a.maxRSS <= recordRSSGoal))
	}
	if p := r.agentProf; p != nil {
		fmt.Fprintf(b, "\nWhere that CPU goes: the bench does what `bprof record` does (NewSession, Add, Run for %s, Cut) on %d busy\n"+
			"threads in its own process. Start-up, from its own rusage: NewSession %s (%s user, %s system), Add %s (%s user,\n"+
			"%s system). A Go CPU profile (runtime/pprof, 100 Hz) of the whole: %d samples, %s of CPU; it under-counts\n"+
			"long system calls such as loading BPF programs (the signals due inside one arrive as one).\n\n",
			p.span, p.threads, p.newSession.total().Round(time.Millisecond), p.newSession.user.Round(time.Millisecond),
			p.newSession.sys.Round(time.Millisecond), p.add.total().Round(time.Millisecond), p.add.user.Round(time.Millisecond),
			p.add.sys.Round(time.Millisecond), p.samples, p.cpu.Round(time.Millisecond))
		b.WriteString("| top functions by self time | self | cumulative |\n|---|---|---|\n")
		for _, f := range p.flat {
			fmt.Fprintf(b, "| `%s` | %.1f %% | %.1f %% |\n", shortFunc(f.name), f.flat*100, f.cum*100)
		}
		b.WriteString("\n| bprof functions by cumulative time | self | cumulative |\n|---|---|---|\n")
		for _, f := range p.cum {
			fmt.Fprintf(b, "| `%s` | %.1f %% | %.1f %% |\n", shortFunc(f.name), f.flat*100, f.cum*100)
		}
	}
}
