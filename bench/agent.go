package main

import (
	"fmt"
	"os"
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
}

// agentCost runs `bin/bprof record` against busy threads and reads its rusage.
func agentCost(python string, threads int, d time.Duration) (agentResult, error) {
	res := agentResult{threads: threads, span: d}
	cmd, err := startWorkload(python, 16, threads, d)
	if err != nil {
		return res, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	out := filepath.Join(os.TempDir(), "bprof-bench.pb.gz")
	defer os.Remove(out)
	var stderr lockedBuffer
	rec, err := startMeasured(-1, []string{"bin/bprof", "record", "-p", fmt.Sprint(cmd.Process.Pid), "-d", d.String(), "-o", out}, nil, &stderr, "")
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
		"is its user+sys (rusage), start-up and writing the profile included.\n\n", 3*r.cfg.duration)
	b.WriteString("| busy threads | steady CPU | steady, per busy thread | whole-life CPU | whole life, per busy thread | peak RSS | goal | met |\n|---|---|---|---|---|---|---|---|\n")
	for _, a := range r.agent {
		fmt.Fprintf(b, "| %d | %s over %s | %.3f %% | %s | %.3f %% | %.1f MB | ≤ 0.2 %% / thread steady, ≤ 24 MB | %s |\n", a.threads,
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
