/* Building and sending one sample: header, kernel and user stacks. Shared by
 * the on-CPU (perf event) and off-CPU (scheduler) programs. */
#pragma once

/* Set while a uprobe program (memory.h) uses this CPU's scratch buffers.
 * Uprobe programs run preemptible, with only migration disabled: the perf
 * event's program can interrupt one, and sched_switch's run in the middle of
 * one when its thread is preempted. Those then leave the scratch alone
 * (new_sample fails) rather than overwrite a sample being built. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} scratch_busy SEC(".maps");

static __always_inline int scratch_is_busy(void)
{
	__u32 zero = 0;
	__u32 *busy = bpf_map_lookup_elem(&scratch_busy, &zero);
	if (!busy || *(volatile __u32 *)busy) {
		stat_inc(STAT_SCRATCH_BUSY);
		return 1;
	}
	return 0;
}

/* The CPU's scratch sample, its header filled in; use new_sample unless the
 * caller holds scratch_busy. */
static __always_inline struct sample *init_sample(__u32 kind, __u32 pid, __u32 tid)
{
	__u32 zero = 0;
	struct sample *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	s->hdr.ktime = bpf_ktime_get_ns();
	s->hdr.value = 0;
	s->hdr.fsbase = BPF_CORE_READ(task, thread.fsbase);
	s->hdr.pid = pid;
	s->hdr.tid = tid;
	s->hdr.cpu = bpf_get_smp_processor_id();
	s->hdr.kind = kind;
	s->hdr.kstack_len = s->hdr.ustack_len = s->hdr.py_len = 0;
	s->hdr.flags = 0;
	s->hdr.state = 0;
	bpf_get_current_comm(s->hdr.comm, sizeof(s->hdr.comm));
	return s;
}

static __always_inline struct sample *new_sample(__u32 kind, __u32 pid, __u32 tid)
{
	if (scratch_is_busy())
		return 0;
	return init_sample(kind, pid, tid);
}

#define MAX_FP_FRAMES MAX_USTACK

/* State of a frame-pointer walk, shared with its bpf_loop callback. */
struct fp_walk {
	struct sample *s;
	__u64 bp;	/* the frame to read: saved rbp at [bp], return address at [bp+8] */
	__u32 base;	/* first data[] word of the user stack */
	__u32 n;	/* return addresses written */
};

static long fp_step(__u64 i, struct fp_walk *w)
{
	__u64 frame[2];
	if (!w->bp || bpf_probe_read_user(frame, sizeof(frame), (void *)w->bp))
		return 1;
	if (!frame[1])
		return 1;
	__u64 idx = (__u64)w->base + w->n;
	if (idx >= MAX_KSTACK + MAX_USTACK)
		return 1;
	clamp_le(idx, MAX_KSTACK + MAX_USTACK - 1);
	w->s->data[idx] = frame[1];
	w->n++;
	/* The stack grows down, so a caller's frame is above its callee's: a
	 * chain that does not climb is garbage (code built without frame pointers). */
	if (frame[0] <= w->bp)
		return 1;
	w->bp = frame[0];
	return 0;
}

/* The user stack from the registers the thread had when it last entered the
 * kernel (or was interrupted): the leaf IP, then one return address per frame.
 * Processes with unwind tables are walked by them (unwind.h); others by frame
 * pointers, one 16-byte read a frame, a fraction of what
 * bpf_get_stack(BPF_F_USER_STACK) cost here. */
__noinline int user_stack(struct sample *s __arg_nonnull, __u32 base)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs___kernel *regs = (void *)bpf_task_pt_regs(task);
	__u64 ip = BPF_CORE_READ(regs, ip);
	if (!ip)
		return 0;
	if (base > MAX_KSTACK) /* verifier */
		return 0;
	struct unwind_proc *proc = bpf_map_lookup_elem(&unwind_procs, &s->hdr.pid);
	if (proc)
		return unwind_user_stack(s, proc, base, ip, BPF_CORE_READ(regs, sp), BPF_CORE_READ(regs, bp));
	__u64 leaf = base;
	clamp_le(leaf, MAX_KSTACK); /* verifier: base is a global function's argument, unknown */
	s->data[leaf] = ip;
	struct fp_walk w = { .s = s, .bp = BPF_CORE_READ(regs, bp), .base = base + 1 };
	bpf_loop(MAX_FP_FRAMES - 1, fp_step, &w, 0);
	return w.n + 1;
}

/* Kernel stack at data[0] (none when in_kernel is 0: a tick that found the
 * thread in user mode has no kernel frames, and bpf_get_stack would spend
 * microseconds finding that out), user stack right after it. Returns the
 * words used. */
static __always_inline __u32 collect_stacks_from(void *ctx, struct sample *s, int in_kernel)
{
	long n = in_kernel ? bpf_get_stack(ctx, s->data, MAX_KSTACK * 8, 0) : 0;
	if (n < 0) {
		s->hdr.flags |= FLAG_KSTACK_ERR;
		stat_inc(STAT_KSTACK_ERR);
		n = 0;
	}
	__u32 k = (__u32)n / 8;
	if (k > MAX_KSTACK) /* verifier */
		k = MAX_KSTACK;
	__u32 u = user_stack(s, k);
	if (u == 0) {
		s->hdr.flags |= FLAG_USTACK_ERR;
		stat_inc(STAT_USTACK_ERR);
	}
	if (u > MAX_USTACK) /* verifier */
		u = MAX_USTACK;
	s->hdr.kstack_len = k;
	s->hdr.ustack_len = u;
	return k + u;
}

static __always_inline __u32 collect_stacks(void *ctx, struct sample *s)
{
	return collect_stacks_from(ctx, s, 1);
}

/* Waking the reader is an irq_work, which in a VM is a self-IPI and a VM exit:
 * it cost ~10 µs a sample here, more than everything else together. So wake
 * it only when a batch has piled up; the reader also polls every 20 ms. */
#define WAKEUP_BYTES (256 << 10)

static __always_inline __u64 wakeup_flags(void)
{
	if (bpf_ringbuf_query(&samples, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void submit(struct sample *s)
{
	__u64 words = (__u64)s->hdr.kstack_len + s->hdr.ustack_len +
		      (__u64)s->hdr.py_len * PYFRAME_WORDS;
	__u64 size = sizeof(s->hdr) + words * 8;
	if (size > sizeof(*s)) /* verifier */
		size = sizeof(*s);
	if (bpf_ringbuf_output(&samples, s, size, wakeup_flags()))
		stat_inc(STAT_RING_FULL);
}
