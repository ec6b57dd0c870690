// Package profiler joins the sampler, the symbolizers and the pprof builder
// into a profiling session: targets in, labelled profiles out.
//
// A Session reads samples from the kernel as they come, names their frames
// while the target is alive (a process that exits takes its memory maps and
// code objects with it), and adds them to the current profile. Cut ends the
// current profile and starts the next one without losing or double counting a
// sample, which is how both `bprof record` (one cut at the end) and the agent
// (one cut per period) use it.
package profiler
