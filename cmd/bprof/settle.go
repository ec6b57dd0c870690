package main

import (
	"os"
	"runtime"
	"runtime/debug"
)

// steadyGCPercent is the garbage collector's target once start-up is over:
// the heap may grow 25 % past what is live before the next collection, not
// the default 100 %. Start-up (BPF objects, symbol and unwind tables) makes
// tens of MB of short-lived garbage, and keeps the default: a tighter
// target there would cost many collections. After it, bprof allocates a few
// hundred KB a second per busy thread profiled and keeps less than 10 MB
// live, so collecting four times as often costs little CPU and takes
// several MB off the peak RSS an always-on agent is judged by.
const steadyGCPercent = 25

// procs is how many threads run Go code at once (GOMAXPROCS), from before
// start-up on. Once recording, bprof wakes a few times a second for a short
// burst of work; with a P per CPU, each burst also woke idle Ps that spun
// looking for work and kept the runtime's monitor polling. One P took a
// quarter to a third off record's steady CPU here (0.55–0.8 % of a core for
// one busy thread, before: 0.75–1.0 %), and a burst is far shorter than the
// ring buffers take to fill. Start-up runs one thing after another, and the
// other Ps only ran the garbage collector's idle-time workers: one P took a
// tenth off its CPU (record on one busy thread, 9 rounds: median 187 -> 169
// ms) with no longer a wall time.
const procs = 1

// startUp applies the settings of bprof's whole run; call it before
// start-up (NewSession). A GOMAXPROCS set in the environment stands.
func startUp() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(procs)
	}
}

// settle applies the steady-state settings and gives start-up's garbage
// back to the kernel; call it once start-up is over.
func settle() {
	debug.SetGCPercent(steadyGCPercent)
	// Loading BPF, then symbol and unwind tables, left garbage several
	// times what stays: return it rather than carry it as RSS for the
	// agent's lifetime. Once, here: returned earlier, Add faulted the same
	// pages in again.
	debug.FreeOSMemory()
}

// shedHeap collects garbage and returns free heap pages to the kernel: before
// a burst of allocation (encoding a profile), so the burst reuses returned
// pages rather than adding to the peak.
func shedHeap() { debug.FreeOSMemory() }
