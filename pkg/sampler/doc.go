// Package sampler loads bprof's BPF programs, attaches them to the kernel's
// sampling points and reads the samples they send.
//
// The on-CPU program runs on a software cpu-clock perf event opened on every
// online CPU, so a busy thread of a target is sampled at the configured rate of
// its CPU time. It keeps only threads of the processes in the target set, and
// for each sends the kernel stack, the user stack and (for CPython targets
// registered with SetPython) the Python frames walked in the kernel.
//
// The sampler decodes samples but never names frames: that is pkg/symbolize's
// job. A Sampler needs root (CAP_BPF and CAP_PERFMON) and Linux 5.15 or later
// (BPF links for perf events, ring buffers, BTF). Close detaches everything.
package sampler
