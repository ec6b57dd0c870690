// Package ksym names kernel addresses with the kernel's own symbol lookup,
// through a small BPF program run on demand (bpf/ksym.c), instead of
// reading /proc/kallsyms whole. A Resolver costs a ~3 ms load and then a
// system call or three per batch of 64 addresses; the kallsyms read it
// replaces cost ~70 ms of CPU and held a 3.5 MB table, for the few hundred
// addresses a profile names. It sees what the kernel sees now: modules and
// BPF programs loaded after it started too.
//
// It needs CAP_BPF and CAP_PERFMON, BPF_PROG_TYPE_SYSCALL and bpf_snprintf
// (Linux 5.14 or later); Open fails otherwise and the caller reads
// /proc/kallsyms instead.
package ksym
