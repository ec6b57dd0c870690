package main

import (
	"fmt"
	"strings"
	"time"
)

type report struct {
	cfg       config
	start     time.Time
	elapsed   time.Duration
	failed    []string // parts that could not run, and why
	depth     []depthResult
	agent     []agentResult
	agentProf *agentProfile
	startup   *startupResult
	hostBill  *hostBillResult
	offcpu    *offcpuResult
	scale     *scaleResult
	peers     *peersResult
	slowdown  *slowdownResult
	accuracy  *accuracyResult
	memory    *memoryResult
	symbolize *symbolizeResult
	unwind    *unwindResult
	svg       string
}

// goal is one line of the summary: a performance goal of the issue and
// whether the figures above meet it.
type goal struct {
	what, figure string
	met          bool
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\nWritten by `make bench` on %s; the run took %s.\n\n",
		r.start.UTC().Format("2006-01-02 15:04 MST"), r.elapsed.Round(time.Second))
	b.WriteString("## Machine\n\n")
	b.WriteString(machine(r.cfg))
	b.WriteString("\n## Commands\n\n")
	fmt.Fprintf(&b, "    bench/peers.sh       # once: perf, bpftrace, libbpf-tools; austin and trixie's libbpf-tools in the trixie root\n"+
		"    make bench           # builds bin/bprof, runs bench/peers.sh, then:\n"+
		"    go run ./bench -out docs/BENCHMARKS.md -duration %s -rounds %d -iterations %d -libs %d -hostbill %s\n\n",
		r.cfg.duration, r.cfg.rounds, r.cfg.iterations, r.cfg.libs, r.cfg.hostBill)
	b.WriteString("One part alone: `go run ./bench -only peers` (or depth, agent, startup, hostbill, scale, offcpu, slowdown, accuracy, memory,\n" +
		"symbolize, unwind, svg; comma-separated) prints its tables without writing this file. Each table below names the commands it ran.\n" +
		"bprof's own figures come from clocks the machine's noise does not move much: the kernel's run time of BPF\n" +
		"programs (`bpf_stats`), and CPU time and peak RSS (rusage). The two vCPUs differ and drift, and identical\n" +
		"wall-clock runs vary ±15–30 % here; timed runs are pinned, alternate, and are given with their spread.\n")
	if len(r.failed) > 0 {
		b.WriteString("\n**Parts that did not run:**\n\n")
		for _, f := range r.failed {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	if goals := r.goals(); len(goals) > 0 {
		b.WriteString("\n## Goals\n\n| goal | figure | met |\n|---|---|---|\n")
		for _, g := range goals {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", g.what, g.figure, yes(g.met))
		}
	}
	r.writeDepth(&b)
	if r.peers != nil {
		r.peers.write(&b)
	}
	r.writeAgent(&b)
	r.writeStartup(&b)
	if r.hostBill != nil {
		r.hostBill.write(&b)
	}
	if r.slowdown != nil {
		r.slowdown.write(&b)
	}
	if r.accuracy != nil {
		r.accuracy.write(&b)
	}
	if r.memory != nil {
		r.memory.write(&b)
	}
	r.writeOffCPU(&b)
	r.writeScale(&b)
	if r.symbolize != nil {
		r.symbolize.write(&b)
	}
	if r.unwind != nil {
		r.unwind.write(&b)
	}
	r.writeCosts(&b)
	if r.svg != "" {
		b.WriteString("\n## Flamegraph rendering\n\n")
		fmt.Fprintf(&b, "`go test -run '^$' -bench BenchmarkSVG100kStacks -benchtime 5x ./pkg/flamegraph`: a profile of 100,000 distinct\n"+
			"stacks rendered to SVG in %s per run (goal < 5 s).\n", r.svg)
	}
	return b.String()
}

// goals checks each performance goal of the issue that a part measured.
func (r *report) goals() []goal {
	var gs []goal
	for _, d := range r.depth {
		switch d.depth {
		case 16:
			gs = append(gs, goal{"in-kernel cost per sample ≤ 2 µs at 16 Python frames", fmt.Sprintf("%.2f µs", d.nsPerSample/1000), d.nsPerSample <= 2000})
		case 64:
			gs = append(gs, goal{"in-kernel cost per sample ≤ 5 µs at 64 Python frames", fmt.Sprintf("%.2f µs", d.nsPerSample/1000), d.nsPerSample <= 5000})
		}
	}
	if r.peers != nil {
		gs = append(gs, r.peers.goals()...)
	}
	for _, d := range r.depth {
		switch d.depth {
		case 4:
			gs = append(gs, goal{fmt.Sprintf("in-kernel cost per sample, all in, ≤ 4 µs on a plain workload (%d Python + %.0f native frames)", d.depth, d.natives),
				fmt.Sprintf("%.2f µs", d.nsPerSample/1000), d.nsPerSample <= 4000})
		case 16:
			gs = append(gs, goal{fmt.Sprintf("in-kernel cost per sample above the empty program's ≤ 3 µs (16 Python + %.0f native frames)", d.natives),
				fmt.Sprintf("%.2f µs (all in %.2f, floor %.2f)", d.aboveFloor()/1000, d.nsPerSample/1000, d.floorPerSample()/1000), d.aboveFloor() <= 3000})
		}
	}
	if u := r.unwind; u != nil {
		gs = append(gs, goal{fmt.Sprintf("in-kernel cost per sample ≤ 10 µs with %.0f native (by unwind tables) + 64 Python frames", u.nativeTables),
			fmt.Sprintf("%.2f µs", u.tables.nsPerSample/1000), u.tables.nsPerSample <= 10000})
		gs = append(gs, goal{fmt.Sprintf("in-kernel cost per sample above the empty program's ≤ 5 µs (64 Python + %.0f native frames)", u.nativeTables),
			fmt.Sprintf("%.2f µs (all in %.2f, floor %.2f)", u.tables.aboveFloor()/1000, u.tables.nsPerSample/1000, u.tables.floorPerSample()/1000), u.tables.aboveFloor() <= 5000})
	}
	for _, a := range r.agent {
		gs = append(gs, goal{fmt.Sprintf("bprof steady-state CPU ≤ 0.2 %% of a core per busy thread (%s)", a.workload()),
			fmt.Sprintf("%.3f %% (whole life, start-up included: %.3f %%)", a.steadyShare*100, a.cpuShare*100), a.steadyShare <= 0.002})
	}
	if r.startup != nil {
		gs = append(gs, r.startup.goals()...)
	}
	for _, a := range r.agent {
		gs = append(gs, goal{fmt.Sprintf("bprof peak RSS ≤ 24 MB (%s)", a.workload()), fmt.Sprintf("%.1f MB", float64(a.maxRSS)/1e6), a.maxRSS <= recordRSSGoal})
	}
	if r.hostBill != nil {
		gs = append(gs, r.hostBill.goals()...)
	}
	if o := r.offcpu; o != nil {
		// The share grows with the switch rate: the goal holds only when
		// measured near its rate (calibrateSpin aims at it).
		gs = append(gs, goal{"off-CPU tracing ≤ 2 % at ~50,000 switches/s",
			fmt.Sprintf("%.2f %% of the target's CPU at %.0f switches/s (C threads), %.2f %% at %.0f/s (Python threads)",
				o.cpuShare*100, o.switchesPerSec, o.python.cpuShare*100, o.python.switchesPerSec),
			o.met() && o.python.met()})
	}
	if sc := r.scale; sc != nil {
		gs = append(gs, goal{"1,000 threads: zero drops", fmt.Sprintf("%d lost", sc.stats.Lost()), sc.stats.Lost() == 0})
	}
	if r.memory != nil {
		gs = append(gs, r.memory.goal())
	}
	if r.svg != "" {
		var ms float64
		fmt.Sscanf(r.svg, "%f ms", &ms)
		gs = append(gs, goal{"SVG of 100,000 stacks < 5 s", r.svg, ms < 5000})
	}
	return gs
}

// threadCount reads "1 thread", "4 threads".
func threadCount(n int) string {
	if n == 1 {
		return "1 thread"
	}
	return fmt.Sprintf("%d threads", n)
}

func yes(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}
