package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
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
	cmd := exec.Command(python, "testdata/python/many_threads.py", fmt.Sprint(threads), fmt.Sprint(busy), fmt.Sprint(d.Seconds()+10))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "ready" {
		return res, fmt.Errorf("workload said %q", line)
	}
	s, err := profiler.NewSession(profiler.Options{OffCPU: true})
	if err != nil {
		return res, err
	}
	defer s.Close()
	if err := s.Add(cmd.Process.Pid); err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		return res, err
	}
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
