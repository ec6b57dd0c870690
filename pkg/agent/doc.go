// Package agent runs bprof continuously: it cuts the profile of its targets
// into one batch per target and period, labels each batch and hands it to
// sinks (a batch directory, a Pyroscope server).
//
// The design in one paragraph: one goroutine (the loop) owns the target set and
// is the only caller of Source.Cut. Each Cut is split by the `pid` sample label
// and the parts are kept per target until that target's period ends, so a
// sample is in exactly one batch whatever mix of periods the targets use. A
// target that leaves (Unregister, a closed registration connection, an exited
// process) gets its last batch at once; Stop ships every target's partial
// period. Sinks must not block the loop for long: the Pyroscope sink queues
// requests in a spool and delivers them from its own goroutine, in order.
//
// Processes join from Options.PIDs, through the registration socket
// (Options.Listen), where a process registers itself, identified by
// SO_PEERCRED, never by a PID it claims, or, system-wide, from a scan of /proc
// through Options.Filter. docs/AGENT.md describes the protocol. A target
// remembers its process's start time, so a reused PID is a new target, and
// where it runs (pkg/container), which labels its batches and samples.
package agent
