package main

import (
	"fmt"
	"strings"
	"time"
)

// isBPFPeer tells the rows whose in-kernel cost compares with bprof's.
func isBPFPeer(r *peerRow) bool { return r.tool.progs != nil && r.tool.name != "bprof" }

// comparisons pits bprof against each BPF peer at each depth (medians).
func (m *peersResult) comparisons() []goal {
	var gs []goal
	for _, b := range m.rows {
		if b.tool.name != "bprof" {
			continue
		}
		for _, p := range m.rows {
			if p.depth != b.depth || !isBPFPeer(p) {
				continue
			}
			gs = append(gs, goal{
				what:   fmt.Sprintf("below %s at depth %d", p.tool.name, p.depth),
				figure: fmt.Sprintf("%s at depth %d: %.2f µs, bprof %.2f µs", p.tool.name, p.depth, p.nsPerSample()/1000, b.nsPerSample()/1000),
				met:    b.nsPerSample() < p.nsPerSample(),
			})
		}
	}
	return gs
}

// goals sums the comparisons up per depth.
func (m *peersResult) goals() []goal {
	var gs []goal
	for _, b := range m.rows {
		if b.tool.name != "bprof" {
			continue
		}
		var cheapest *peerRow
		for _, p := range m.rows {
			if p.depth == b.depth && isBPFPeer(p) && (cheapest == nil || p.nsPerSample() < cheapest.nsPerSample()) {
				cheapest = p
			}
		}
		if cheapest != nil {
			gs = append(gs, goal{fmt.Sprintf("in-kernel cost per sample below every BPF peer (depth %d)", b.depth),
				fmt.Sprintf("bprof %.2f µs; cheapest peer %s %.2f µs", b.nsPerSample()/1000, cheapest.tool.name, cheapest.nsPerSample()/1000),
				b.nsPerSample() < cheapest.nsPerSample()})
		}
	}
	return gs
}

func (m *peersResult) write(b *strings.Builder) {
	b.WriteString("\n## bprof beside its peers: cost per sample, CPU and memory\n\n")
	fmt.Fprintf(b, "One busy Python thread (`chroot ROOT python3 testdata/python/depth.py DEPTH SECONDS`, the trixie root's python3.13)\n"+
		"pinned to CPU %d; each tool pinned to CPU %d, measured over %s once it samples (its BPF programs loaded, then\n"+
		"one more second); %d rounds of every row, medians with min–max. *In-kernel* is the tool's perf_event BPF\n"+
		"programs' run time (`bpf_stats`, read through the program fds the tool holds) divided by the samples the\n"+
		"target's CPU time is worth at the tool's rate: the same yardstick for every tool, carrying the ticks of the\n"+
		"other CPU too. perf and austin have no BPF programs: perf samples from the kernel's own code, austin from user\n"+
		"space (process_vm_readv). *Tool CPU* is its user+sys over the window (share of one core); *whole life* adds\n"+
		"start-up and writing its output after SIGINT. *Peak RSS* is the tool's own (GNU time), largest of the rounds.\n\n",
		targetCPU, toolCPU, m.window, m.rounds)
	b.WriteString("| tool | depth | in-kernel µs per sample | ns per program run | tool CPU over the window | whole life | peak RSS |\n|---|---|---|---|---|---|---|\n")
	for _, r := range m.rows {
		kernel, run := "—", "—"
		if r.tool.progs != nil {
			lo, hi := r.rng(peerResult.nsPerSample)
			kernel = fmt.Sprintf("%.2f (%.2f–%.2f)", r.nsPerSample()/1000, lo/1000, hi/1000)
			run = fmt.Sprintf("%.0f", r.med(peerResult.nsPerRun))
		}
		window := r.med(func(p peerResult) float64 { return float64(p.windowCPU) })
		share := r.med(func(p peerResult) float64 { return p.windowCPU.Seconds() / p.window.Seconds() })
		life := r.med(func(p peerResult) float64 { return float64(p.cpu) })
		_, rss := r.rng(func(p peerResult) float64 { return float64(p.maxRSS) })
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s (%.2f %%) | %s | %.1f MB |\n", r.tool.name, r.depth, kernel, run,
			time.Duration(window).Round(100*time.Microsecond), share*100, time.Duration(life).Round(time.Millisecond), rss/1e6)
	}
	if len(m.failed) > 0 {
		b.WriteString("\nDid not run: " + strings.Join(m.failed, "; ") + ".\n")
	}
	b.WriteString("\nCommands (PID is the target; ROOT the trixie root; OUT a temporary directory):\n\n")
	for _, name := range peerOrder {
		if c, ok := m.command[name]; ok {
			fmt.Fprintf(b, "- %s: `%s`\n", name, strings.ReplaceAll(c, chrootRoot(), "ROOT"))
		}
	}
	b.WriteString("\nOnly bprof and austin name Python frames; the BPF peers' user stacks stop in the interpreter (CPython is\n" +
		"built without frame pointers), and perf's `-g` stacks likewise.\n")
}
