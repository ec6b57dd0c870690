package main

import (
	"fmt"
	"log"
	"os"
	"time"
)

// peerOrder is the order of the peers table: bprof first, then the BPF
// peers (whose in-kernel cost compares with bprof's), then the others.
var peerOrder = []string{"bprof", "bpftrace ustack", "bpftrace ustack+kstack", "libbpf-tools profile", "perf record -g", "austin -s"}

type peerResult struct {
	tool      tool
	depth     int
	prog      progCost      // the tool's BPF programs over the window
	targetCPU time.Duration // the target's time on the CPU over the window
	switches  int64         // the target's context switches over the window (off-CPU)
	windowCPU time.Duration // the tool's CPU time over the window
	window    time.Duration
	cpu       time.Duration // the tool's whole-life CPU time (start-up and output included)
	maxRSS    int64
}

// nsPerSample divides the programs' run time by the samples the target's
// CPU time is worth at the tool's rate: the same yardstick for every tool.
func (p peerResult) nsPerSample() float64 {
	samples := p.targetCPU.Seconds() * p.tool.hz
	if samples == 0 {
		return 0
	}
	return float64(p.prog.runtime.Nanoseconds()) / samples
}

func (p peerResult) nsPerRun() float64 {
	if p.prog.runs == 0 {
		return 0
	}
	return float64(p.prog.runtime.Nanoseconds()) / float64(p.prog.runs)
}

// peerRow is one tool at one depth, measured once per round.
type peerRow struct {
	tool  tool
	depth int
	runs  []peerResult
}

// med is the median over the rounds of f.
func (r *peerRow) med(f func(peerResult) float64) float64 {
	var xs []float64
	for _, p := range r.runs {
		xs = append(xs, f(p))
	}
	return median(xs)
}

// rng is the min–max over the rounds of f.
func (r *peerRow) rng(f func(peerResult) float64) (lo, hi float64) {
	var xs []float64
	for _, p := range r.runs {
		xs = append(xs, f(p))
	}
	return spread(xs)
}

func (r *peerRow) nsPerSample() float64 { return r.med(peerResult.nsPerSample) }

type peersResult struct {
	rows          []*peerRow
	rounds        int
	offcpu        []peerResult // bprof CPU+wall and offcputime on the ping-pong workload
	offcpuCommand map[string]string
	failed        []string // tools that could not run, and why
	window        time.Duration
	command       map[string]string
}

// peersCost runs bprof and each peer against one busy Python thread at each
// depth, pinned apart, and reads their BPF programs' run time (bpf_stats)
// and their CPU time and RSS. Rounds repeat the whole set, so that a burst
// of other work on the machine moves one run of each row, not a whole row.
func peersCost(c *chroot, depths []int, rounds int, d time.Duration) (peersResult, error) {
	res := peersResult{window: d, rounds: rounds, command: map[string]string{}}
	tmp, err := os.MkdirTemp("", "bprof-peers-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	stats, err := enableStats()
	if err != nil {
		return res, err
	}
	defer stats.Close()
	tools := toolset(c, tmp)
	rows := map[string]*peerRow{}
	for _, depth := range depths {
		for _, name := range peerOrder {
			row := &peerRow{tool: tools[name], depth: depth}
			rows[fmt.Sprint(name, depth)] = row
			res.rows = append(res.rows, row)
			res.command[name] = tools[name].command()
		}
	}
	failed := map[string]bool{}
	for round := 0; round < rounds; round++ {
		for _, depth := range depths {
			for _, name := range peerOrder {
				if failed[name] {
					continue // the reason is noted once
				}
				argv, err := c.python("depth.py", fmt.Sprint(depth), fmt.Sprint((d + time.Minute).Seconds()))
				if err != nil {
					return res, err
				}
				r, err := measurePeer(tools[name], pinned(targetCPU, argv), d, tmp)
				if err != nil {
					log.Printf("peers: %s at depth %d: %v", name, depth, err)
					res.failed = append(res.failed, fmt.Sprintf("%s: %v", name, err))
					failed[name] = true
					continue
				}
				r.depth = depth
				row := rows[fmt.Sprint(name, depth)]
				row.runs = append(row.runs, r)
				log.Printf("peers: round %d: %-24s depth %3d: %6.2f µs per sample, %s CPU in %s, %.1f MB", round+1,
					name, depth, r.nsPerSample()/1000, r.windowCPU.Round(time.Millisecond), d, float64(r.maxRSS)/1e6)
			}
		}
	}
	kept := res.rows[:0]
	for _, row := range res.rows {
		if len(row.runs) > 0 {
			kept = append(kept, row)
		}
	}
	res.rows = kept
	return res, nil
}

// measurePeer starts the target, then the tool, and reads both over d once
// the tool samples.
func measurePeer(t tool, target []string, d time.Duration, tmp string) (peerResult, error) {
	res := peerResult{tool: t, window: d}
	w, err := launch(target)
	if err != nil {
		return res, err
	}
	defer w.stop()
	r, err := startTool(t, w.pid(), tmp)
	if err != nil {
		return res, err
	}
	read := func() (progCost, time.Duration, time.Duration, error) {
		var pc progCost
		var err error
		if t.progs != nil {
			pc, err = costOf(r.pid(), t.progs)
		}
		return pc, onCPU(w.pid()), onCPU(r.pid()), err
	}
	p0, t0, c0, err := read()
	if err != nil {
		r.stop()
		return res, err
	}
	time.Sleep(d)
	p1, t1, c1, err := read()
	if err != nil {
		r.stop()
		return res, err
	}
	res.prog, res.targetCPU, res.windowCPU = p1.sub(p0), t1-t0, c1-c0
	if err := r.stop(); err != nil {
		log.Printf("peers: %s: %v", t.name, err)
	}
	res.cpu, res.maxRSS = r.usage()
	return res, nil
}
