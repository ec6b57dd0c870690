/* The few kernel types bprof reads, as CO-RE relocatable stubs: clang records
 * the field names and libbpf-style relocation against the running kernel's BTF
 * fixes the offsets at load time, so no vmlinux.h is needed. */
#pragma once

struct thread_struct {
	unsigned long fsbase;
} __attribute__((preserve_access_index));

struct sched_entity {
	unsigned long long sum_exec_runtime; /* ns on the CPU, up to date at sched_switch */
} __attribute__((preserve_access_index));

struct task_struct {
	unsigned int __state;
	struct sched_entity se;
	int pid;
	int tgid;
	struct thread_struct thread;
	char comm[16];
} __attribute__((preserve_access_index));

/* The kernel's own register frame (not the uapi one, whose names differ):
 * what bpf_task_pt_regs points at. */
struct pt_regs___kernel {
	unsigned long bp;
	unsigned long sp;
	unsigned long ip;
} __attribute__((preserve_access_index));
