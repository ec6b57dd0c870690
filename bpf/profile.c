//go:build ignore

/* On-CPU sampling: a perf-event program on a software cpu-clock event per CPU.
 * Each tick that lands on a thread of a target process sends one sample with
 * its kernel, user and Python stacks to the ring buffer.
 * Off-CPU time: a tp_btf program on sched_switch (offcpu.h). Memory: uprobes
 * on the allocation sampler's probes (memory.h). All live in one object
 * because they share the target set, the Python tables and the ring. */

#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "kernel.h"
#include "types.h"
#include "global.h"
#include "maps.h"
#include "unwind.h"
#include "sample.h"
#include "python.h"
#include "offcpu.h"
#include "memory.h"

char LICENSE[] SEC("license") = "GPL";

SEC("perf_event")
int bprof_cpu(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	if (!is_target(pid))
		return 0;
	stat_inc(STAT_SAMPLES);

	struct sample *s = new_sample(KIND_CPU, pid, tid);
	if (!s)
		return 0;
	/* The privilege level of the interrupted code: 3 is user mode. */
	__u32 used = collect_stacks_from(ctx, s, (ctx->regs.cs & 3) == 0);
	walk_python(s, used);
	submit(s);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(bprof_switch, _Bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	/* This runs on every context switch of the machine: the common case, no
	 * target on either side, is two direct loads (tp_btf arguments are
	 * trusted pointers, no helper call needed) and two bitmap tests. */
	__u32 prev_pid = prev->tgid;
	__u32 next_pid = next->tgid;
	__u64 now = 0;
	if (is_target(prev_pid)) {
		/* A preempted or yielding thread is runnable: waiting for a CPU, not for an event. */
		__u32 runnable = preempt || prev_state == 0;
		now = bpf_ktime_get_ns();
		stat_inc(STAT_SWITCHES);
		switch_out(ctx, prev, prev_pid, prev->pid, runnable, prev_state & TASK_DEAD, prev->se.sum_exec_runtime, now);
	}
	if (is_target(next_pid)) {
		if (!now)
			now = bpf_ktime_get_ns();
		switch_in(next_pid, next->pid, next->se.sum_exec_runtime, now);
	}
	return 0;
}
