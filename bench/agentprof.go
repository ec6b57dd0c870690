package main

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/bprof/bprof/pkg/profiler"
	"github.com/google/pprof/profile"
)

// `bprof record` has no flag to profile itself, so the bench profiles the
// same work in its own process: a Session from NewSession to the final Cut,
// as record runs it, under runtime/pprof. Go's profiler cannot see into a
// long system call (the SIGPROFs due while the thread is in the kernel
// arrive as one on return), and loading BPF programs is one: so the bench
// also reads its own rusage around NewSession and Add.

type funcCost struct {
	name      string
	flat, cum float64 // shares of all samples
}

type agentProfile struct {
	threads int
	span    time.Duration
	samples int64
	cpu     time.Duration // total CPU in the profile
	flat    []funcCost    // top functions by self time
	cum     []funcCost    // top bprof functions by cumulative time
	// CPU time of the bench process in NewSession and in Add.
	newSession, add cpuTime
}

// cpuTime is user and system time.
type cpuTime struct{ user, sys time.Duration }

func (c cpuTime) total() time.Duration { return c.user + c.sys }

func (c cpuTime) sub(d cpuTime) cpuTime { return cpuTime{c.user - d.user, c.sys - d.sys} }

// selfTimes is the bench process's user and system time so far.
func selfTimes() cpuTime {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpuTime{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

// profileAgent takes a Go CPU profile of a Session profiling busy threads for d.
func profileAgent(python string, threads int, d time.Duration) (agentProfile, error) {
	res := agentProfile{threads: threads, span: d}
	cmd, err := startWorkload(python, 16, threads, d)
	if err != nil {
		return res, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		return res, fmt.Errorf("start CPU profile: %w", err)
	}
	err = recordLikeCLI(&res, cmd.Process.Pid, d)
	pprof.StopCPUProfile()
	if err != nil {
		return res, err
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		return res, fmt.Errorf("parse CPU profile: %w", err)
	}
	flat, cum := map[string]float64{}, map[string]float64{}
	var total float64
	for _, s := range p.Sample {
		v := float64(s.Value[1])
		total += v
		res.samples += s.Value[0]
		seen := map[string]bool{}
		for i, loc := range s.Location {
			for j, line := range loc.Line {
				name := line.Function.Name
				if i == 0 && j == 0 {
					flat[name] += v
				}
				if !seen[name] {
					seen[name] = true
					cum[name] += v
				}
			}
		}
	}
	res.cpu = time.Duration(total)
	res.flat = topCosts(flat, cum, total, false, func(string) bool { return true }, 5)
	res.cum = topCosts(flat, cum, total, true, isBprofStep, 5)
	return res, nil
}

// recordLikeCLI does what `bprof record -p PID -d D` does, but the writing,
// and notes the CPU time of its start-up in res.
func recordLikeCLI(res *agentProfile, pid int, d time.Duration) error {
	t0 := selfTimes()
	s, err := profiler.NewSession(profiler.Options{OffCPU: true})
	if err != nil {
		return err
	}
	defer s.Close()
	t1 := selfTimes()
	if err := s.Add(pid); err != nil {
		return err
	}
	res.newSession, res.add = t1.sub(t0), selfTimes().sub(t1)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		return err
	}
	s.Cut()
	return nil
}

// isBprofStep keeps bprof's own functions below the entry points, which
// hold everything.
func isBprofStep(name string) bool {
	return strings.Contains(name, "bprof/pkg/") && !strings.HasSuffix(name, "profiler.(*Session).Run")
}

// topCosts returns the n functions keep accepts with the most self time, or
// the most cumulative time if byCum.
func topCosts(flat, cum map[string]float64, total float64, byCum bool, keep func(string) bool, n int) []funcCost {
	var out []funcCost
	for name := range cum {
		if keep(name) {
			out = append(out, funcCost{name: name, flat: flat[name] / total, cum: cum[name] / total})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if byCum {
			return out[i].cum > out[j].cum
		}
		return out[i].flat > out[j].flat
	})
	return out[:min(n, len(out))]
}
