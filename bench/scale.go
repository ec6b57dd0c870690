package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/bprof/bprof/pkg/profiler"
	"github.com/bprof/bprof/pkg/sampler"
)

type scaleResult struct {
	threads, busy int
	samples       int64
	threadsSeen   int
	stats         sampler.Stats
	wallTotal     time.Duration // summed over threads
	span          time.Duration
}

// scale profiles one process with many threads, most blocked, with off-CPU
// on: every thread must be accounted for and nothing dropped.
func scale(python string, threads, busy int, d time.Duration) (scaleResult, error) {
	res := scaleResult{threads: threads, busy: busy}
	cmd, err := startScript(python, "many_threads.py", fmt.Sprint(threads), fmt.Sprint(busy), fmt.Sprint(d.Seconds()+10))
	if err != nil {
		return res, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	s, err := profileFor(cmd.Process.Pid, profiler.Options{OffCPU: true}, d)
	if err != nil {
		return res, err
	}
	defer s.Close()
	res.stats, _ = s.Stats()
	p, _, _ := s.Cut()
	res.span = time.Duration(p.DurationNanos)
	tids := map[int64]bool{}
	for _, smp := range p.Sample {
		res.samples += smp.Value[0]
		res.wallTotal += time.Duration(smp.Value[len(smp.Value)-1])
		tids[smp.NumLabel["thread_id"][0]] = true
	}
	res.threadsSeen = len(tids)
	runtime.GC()
	return res, nil
}

func (r *report) writeScale(b *strings.Builder) {
	sc := r.scale
	if sc == nil {
		return
	}
	b.WriteString("\n## Scale: one process with 1,000 threads\n\n")
	fmt.Fprintf(b, "`testdata/python/many_threads.py %d %d SECONDS`: %d threads, %d busy, the rest blocked on an event; an in-process\n"+
		"Session (CPU and wall) for %s.\n\n", sc.threads, sc.busy, sc.threads, sc.busy, sc.span.Round(100*time.Millisecond))
	b.WriteString("| threads in the profile | on-CPU samples | wall, all threads | threads × span | lost | Python threads unknown | goal | met |\n|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(b, "| %d | %d | %.1f s | %.1f s | %d | %d | zero drops | %s |\n", sc.threadsSeen, sc.samples, sc.wallTotal.Seconds(),
		(time.Duration(sc.threads+1) * sc.span).Seconds(), sc.stats.Lost(), sc.stats.PyUnknownThreads, yes(sc.stats.Lost() == 0))
}
