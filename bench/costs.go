package main

import (
	"fmt"
	"strings"
	"time"
)

// writeCosts says, for each goal the figures above do not meet, what costs
// the time and what would fix it. Figures computed from this run are
// marked as such; the breakdowns that need the program cut apart come from
// the dated analysis they cite and are kept only while the goal is unmet.
func (r *report) writeCosts(b *strings.Builder) {
	var notes []string
	if n := r.depthNote(); n != "" {
		notes = append(notes, n)
	}
	if n := r.peersNote(); n != "" {
		notes = append(notes, n)
	}
	if n := r.cpuNote(); n != "" {
		notes = append(notes, n)
	}
	if n := r.rssNote(); n != "" {
		notes = append(notes, n)
	}
	if n := r.memoryNote(); n != "" {
		notes = append(notes, n)
	}
	if o := r.offcpu; o != nil && !(o.met() && o.python.met()) {
		notes = append(notes, fmt.Sprintf("**Off-CPU ≤ 2 %% at ~50,000 switches/s: not met** (C threads %.2f %% at %.0f/s, %.0f ns per target switch; "+
			"Python threads %.2f %% at %.0f/s, %.0f ns). "+
			"Measured with programs that do one part each (2026-12-02): the tracepoint with bpf_stats on ~65 ns, the two target tests ~25 ns, "+
			"the clock read (`bpf_ktime_get_ns`) ~70 ns, each lookup of the thread's entry (at switch-out and at switch-in) ~40 ns; "+
			"the wait itself is summed in the entry's slots. Task-local storage would make each lookup ~10 ns. "+
			"The run queue's clock, read without a helper, would save the clock read, "+
			"but it was more than 5 µs off CLOCK_MONOTONIC in a quarter to half of the switches here (up to 0.9 ms), too far to time waits of tens of µs by. "+
			"A Python thread's wait also reads its top two frames (~700 ns), at most once a millisecond for waits at one native place.",
			o.cpuShare*100, o.switchesPerSec, o.nsPerSwitch, o.python.cpuShare*100, o.python.switchesPerSec, o.python.nsPerSwitch))
	}
	if sc := r.scale; sc != nil && sc.stats.Lost() > 0 {
		notes = append(notes, fmt.Sprintf("**1,000 threads, zero drops: not met** (%d lost): the ring buffer filled; "+
			"a larger ring or a shorter poll would keep up.", sc.stats.Lost()))
	}
	if len(notes) == 0 {
		return
	}
	b.WriteString("\n## What costs the time, and what would fix it\n\n")
	for _, n := range notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
}

// depthNote fits the per-sample cost against the stack depth (least
// squares over this run's rows): a fixed part and a part per Python frame.
func (r *report) depthNote() string {
	unmet := false
	for _, d := range r.depth {
		unmet = unmet || (d.depth == 16 && d.nsPerSample > 2000) || (d.depth == 64 && d.nsPerSample > 5000)
	}
	if !unmet || len(r.depth) < 2 {
		return ""
	}
	var n, sx, sy, sxx, sxy float64
	for _, d := range r.depth {
		x, y := float64(min(d.depth, 128)), d.nsPerSample
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	slope := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	fixed := (sy - slope*sx) / n
	return fmt.Sprintf("**On-CPU sample, ≤ 2 µs at 16 frames / ≤ 5 µs at 64: not met.** This run's depth table fits "+
		"%.1f µs per sample plus %.0f ns per Python frame. The analysis of 2026-11-25 (`go run ./bench -only depth` with "+
		"parts of the program cut out one at a time) found where: a nearly empty program (the target lookup, a counter) "+
		"already costs 1.3–1.9 µs per target sample in this VM, since it runs from a timer interrupt with cold caches and TLB "+
		"and the figure also carries the other CPU's ticks; then starting the sample ~0.3 µs, kernel stack plus the "+
		"frame-pointer walk ~1.3 µs, submitting to the ring ~2 µs, and each Python frame's `bpf_probe_read_user` calls "+
		"75–150 ns each, as the target's pages are cold in the TLB (two-dimensional page walks in a VM). Since then the "+
		"walker reads 3.11+ frames a 2 KiB window at a time and caches code objects' check bytes per CPU, which took the "+
		"per-frame cost to the slope above; but the native stack under the Python frames (~12 frames here, libpython's "+
		"start-up chain) is now unwound by tables, each step a row search and a read, where frame pointers gave up after "+
		"one or two. Since 2026-12-01 the kernel stack is read only for ticks in the kernel, the user stack in 1 KiB chunks, "+
		"a per-CPU memo of the last native walk serves the frames a sample shares with it, and a page index narrows each "+
		"row search; timers in the program (on a loaded machine) then put the native walk at 8–10 µs and the Python walk "+
		"at 5–9 µs, mostly cold memory. What would help further: building the sample in the ring itself instead of "+
		"copying it from a per-CPU buffer (every record would take its maximum size), and fewer lines touched a frame.", fixed/1000, slope)
}

// peersNote names the BPF peers cheaper per sample than bprof, if any.
func (r *report) peersNote() string {
	if r.peers == nil {
		return ""
	}
	var lower []string
	for _, g := range r.peers.comparisons() {
		if !g.met {
			lower = append(lower, g.figure)
		}
	}
	if len(lower) == 0 {
		return ""
	}
	return "**Below every BPF peer per sample: not met** (" + strings.Join(lower, "; ") + "). The peers' programs " +
		"record only what the kernel's `bpf_get_stackid` walks (frame pointers, no Python frames) into a stack map and " +
		"count it in a hash map; bprof also walks the Python frames, reads code-object check bytes and submits each " +
		"sample to the ring buffer, which is where its extra time goes (see the per-depth note)."
}

// cpuNote explains bprof's own CPU: steady state where it is over the goal,
// and start-up (its goal: ≤ 150 ms), with the top functions of
// this run's Go CPU profile.
func (r *report) cpuNote() string {
	var over []string
	for _, a := range r.agent {
		if a.steadyShare > 0.002 {
			over = append(over, fmt.Sprintf("%.3f %% per thread at %s", a.steadyShare*100, a.workload()))
		}
	}
	var s string
	if len(over) > 0 {
		s = "**bprof's steady-state CPU, ≤ 0.2 % of a core per busy thread: not met** (" + strings.Join(over, ", ") + "). "
	} else {
		s = "**bprof's steady-state CPU, ≤ 0.2 % of a core per busy thread: met.** "
	}
	s += "The steady figure leaves start-up and the final write out, and it hardly moves with the thread count (the " +
		"busy threads share one CPU, so bprof names 100 samples a second at 1 thread as at 16): it is a fixed cost, " +
		"and 1 thread is where it is nearest the goal. It went from 2.1-2.7 % of a core to 0.6-1.0 % on 2026-12-02 " +
		"(the ring looked at without a system call, its wake-ups through the Go runtime's poller, check bytes read a " +
		"batch at a time, non-blocking reads through RawSyscall), then to 0.19-0.23 % (same-binary A/B, 30 s " +
		"windows): a raw stack named once a period is added by the Stack found then (most samples are one lookup, " +
		"not 20-90 frames named), one sample decoded in place, the poll backing off to 640 ms and the target watch " +
		"from 200 ms to 1 s while nothing changes, and one P (GOMAXPROCS) once recording. perf on `record` of one " +
		"thread then put a fifth of what is left in the Go runtime's monitor thread (sysmon) and a fifth in its " +
		"scheduler waking, a quarter in adding samples and confirming the check bytes of cached Python frames. " +
		"What would take it further: fewer wake-ups (the target watch driven by pidfds in the runtime's poller) and " +
		"counting identical stacks in the kernel so the reader wakes once a period. Kernel frames are named by the " +
		"kernel's own lookup since 2026-12-02 (`pkg/ksym`: a BPF program run over each batch of new addresses); " +
		"reading /proc/kallsyms instead cost ~70 ms of CPU a run, at the first kernel frame, which could fall in a " +
		"steady window."
	if st := r.startup; st != nil {
		rec, ag := medianDuration(st.record), medianDuration(st.agent)
		verdict := "not met"
		if rec <= startupGoal && ag <= startupGoal {
			verdict = "met"
		}
		s += fmt.Sprintf(" **Start-up, ≤ 150 ms of CPU to the first sample: %s** (`record` %s, `agent` %s: medians, see Start-up above).",
			verdict, rec.Round(time.Millisecond), ag.Round(time.Millisecond))
		if p := r.agentProf; p != nil {
			s += fmt.Sprintf(" In the bench's own process, NewSession took %s (%s in the kernel) and Add %s; "+
				"the binary adds the Go runtime's start and its packages' initialisation (`bprof version` takes 13-19 ms of CPU here, a Go hello-world 6 ms).",
				p.newSession.total().Round(time.Millisecond), p.newSession.sys.Round(time.Millisecond), p.add.total().Round(time.Millisecond))
		}
		s += " It was 392 ms (in-process) in the make bench of 2026-12-02 17:23, most of it the BPF verifier: ~55 ms a program " +
			"(64,000-70,000 instructions processed each), as it checked the stack walkers' `bpf_loop` callbacks " +
			"again for each path of their callers and each combination of the walk's counters it could tell apart. " +
			"Since then the walkers are global functions and keep their counters in a map value, which the " +
			"verifier does not track (4,000-8,000 instructions, 6-11 ms a program); every program shares one parse " +
			"of the kernel's BTF; Add decodes symbol tables in place, reads the interpreter's file once and writes " +
			"unwind rows straight into the kernel's (mmapable) array rather than a map update per row (~100 ns " +
			"each, ~9 ms a start); and the start-up garbage is collected, not returned to the kernel only to be " +
			"faulted in again. What is left (perf and Go's profiler, 2026-12-02): creating the maps (~25 ms, half " +
			"of it the off-CPU LRU map of 2,048 wait stacks of 5 KiB, whose every element the kernel touches " +
			"through fresh vmalloc pages, and ~1.5 ms for each 65,536-entry hash map's buckets), the kernel's BTF " +
			"parsed by cilium/ebpf (~18 ms, half of it inflating task_struct's type graph for CO-RE), the verifier " +
			"(~20 ms), and in Add the unwind tables and symbols of every file the target maps (~45 ms for 18 files, " +
			"libpython's 64,000 rows the most). What would meet it: wait stacks kept in a smaller map, sized by " +
			"the targets of a `record`, and unwind tables built for a file when its first sample lands there; an " +
			"agent pays start-up once, `bprof record` on every run."
	}
	if p := r.agentProf; p != nil && len(p.flat) > 0 {
		var top []string
		for _, f := range p.flat {
			top = append(top, fmt.Sprintf("`%s` %.0f %%", shortFunc(f.name), f.flat*100))
		}
		s += fmt.Sprintf(" This run's Go CPU profile (%s, see the table above), top 5 by self time: %s.",
			threadCount(p.threads), strings.Join(top, ", "))
		var cum []string
		for _, f := range p.cum {
			cum = append(cum, fmt.Sprintf("`%s` %.0f %%", shortFunc(f.name), f.cum*100))
		}
		if len(cum) > 0 {
			s += " By cumulative time: " + strings.Join(cum, ", ") + "."
		}
	}
	return s
}

// rssNote explains the peak RSS where it is over the goal.
func (r *report) rssNote() string {
	var over []string
	for _, a := range r.agent {
		if a.maxRSS > recordRSSGoal {
			over = append(over, fmt.Sprintf("%.1f MB at %s", float64(a.maxRSS)/1e6, a.workload()))
		}
	}
	if len(over) == 0 {
		return ""
	}
	return "**Peak RSS ≤ 24 MB for `record` of one process: not met** (" + strings.Join(over, ", ") + "). " +
		"`record`'s peak is either start-up's or the end's. Start-up: loading the BPF objects (the kernel's BTF) and Add " +
		"(unwind tables and symbols of 18 files) take the Go heap to ~8 MB beside the binary's 8.5 MB of text and " +
		"1.4 MB of libc. The end: the last period's wait sites are named (a runnable thread's site is where it was " +
		"preempted, so 16 spinning threads make ~2,000 in 30 s), the profile is built and encoded. Since 2026-12-02 " +
		"the ring is 512 KiB on this machine, kernel frames are named by the kernel (no kallsyms table), symbol " +
		"tables are decoded in place, start-up's garbage is collected before Add and returned after it, and the " +
		"collector keeps the heap within 25 % of what is live once recording (GOGC=25). Later that day: " +
		"unwind rows are made once, 16 bytes each, in address order (libpython's parse allocates 1.9 MB, " +
		"was 3.9), wait sites are read and named into reused buffers (the end of a 30 s recording of 16 threads " +
		"allocated 45 MB, now ~5), and `record` closes and drops its session (symbols, code objects, sites) before " +
		"it encodes the profile, which is written as it is encoded (pkg/export's encoder; the library's built the whole " +
		"message in memory first, ~4 MB for 3,000 samples). What is left at the end is the last period's new " +
		"stacks and the profile object itself (~1 KB a sample: its label maps and location slices)."
}

// recordRSSGoal is issue 15's peak RSS for `bprof record` of one process.
const recordRSSGoal = 24e6

// shortFunc drops the module path and the type arguments of a Go function
// name.
func shortFunc(name string) string {
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i] + "[…]"
	}
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// memoryNote says where a sampled allocation's time goes when the memory
// overhead goal is unmet: this run's BPF figures, and the parts no counter
// shows (the traps) from the dated analysis.
func (r *report) memoryNote() string {
	m := r.memory
	if m == nil || m.goal().met {
		return ""
	}
	return fmt.Sprintf("**Memory profiles, slowdown ≤ 3 %%: not met** (%s). In this run the sampler alone (hooks "+
		"and sampling, nothing attached) cost %.1f %% of the workload's CPU, and `bprof_alloc` took %.1f µs of BPF run "+
		"time per sampled allocation, %.2f %% of the control's CPU time; the rest is the trap into the probe and "+
		"what the program's walks evict from the target's caches. The analysis of 2026-12-02 timed the probe calls "+
		"inside the target (an instrumented build of the sampler reading CLOCK_THREAD_CPUTIME_ID around each call, "+
		"less the same with nothing attached): the trap costs 4–7 µs cold, as it comes ~1 ms after the last one "+
		"(~1.6 µs warm), and the program's native walk ~4 µs and Python walk ~1.5 µs of its time. Done since: the "+
		"hooks count before a tail call to the previous allocator (the sampler alone cost ~3.5 %% while they waited "+
		"for the block), and frees of sampled blocks leave a set bprof copies at each cut instead of calling a "+
		"second probe (a trap and ~0.7 µs of BPF each). What would lower it further: a cheaper cold walk (the "+
		"native frames above the interpreter's first frame repeat in every sample of a thread), or fewer traps "+
		"(samples batched in the target and walked by one probe hit, which would need the stacks taken in the "+
		"target).",
		m.goal().figure, (median(m.ratio["sampler on, no bprof"])-1)*100, m.perSampled()/1e3, m.bpfShare()*100)
}
