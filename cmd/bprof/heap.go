package main

import "runtime/debug"

// steadyGCPercent is the garbage collector's target once start-up is over:
// the heap may grow 25 % past what is live before the next collection, not
// the default 100 %. Start-up (BPF objects, symbol and unwind tables) makes
// tens of MB of short-lived garbage, and keeps the default: a tighter
// target there would cost many collections. After it, bprof allocates a few
// hundred KB a second per busy thread profiled and keeps less than 10 MB
// live, so collecting four times as often costs little CPU and takes
// several MB off the peak RSS an always-on agent is judged by.
const steadyGCPercent = 25

// settleHeap applies steadyGCPercent; call it once start-up is over.
func settleHeap() { debug.SetGCPercent(steadyGCPercent) }

// shedHeap collects garbage and returns free heap pages to the kernel: before
// a burst of allocation (encoding a profile), so the burst reuses returned
// pages rather than adding to the peak.
func shedHeap() { debug.FreeOSMemory() }
