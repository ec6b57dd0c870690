/* Memory profiles: a uprobe on the probe function of bprof's allocation
 * sampler (native/allocsampler), a library loaded into the target that
 * decides which allocations to sample. Only sampled allocations get here, so
 * the uprobe's cost (a trap, ~1.6 µs here on the emulated push the probe
 * starts with when warm, 4-7 µs cold, 15-30 µs on an instruction stepped out
 * of line) is paid a few thousand times a second at most, never per
 * allocation. Measured in the target at the default rate (2026-12-02,
 * docs/BENCHMARKS.md): the probe costs 13-20 µs, its trap (cold) 4-7 and this
 * program 8-13, the two walks about half of it. Frees of sampled blocks do
 * not come here: the library keeps the live ones in a set user space copies
 * (pkg/memory), which spares the target a trap per sampled block.
 *
 *   bprof_alloc_probe(ptr, size, weight, flags)  -> KIND_ALLOC with the stacks
 *
 * The kernel stack of a uprobe is the trap's own, so none is taken. The user
 * registers (bpf_task_pt_regs) are those at the probe's first instruction, so
 * the native walk starts in the probe function and goes up through the
 * allocator into the interpreter, and the Python walk is the CPU sample's.
 * Unlike the perf event's and the scheduler's, this program runs
 * preemptible (see scratch_busy in sample.h). Loaded only when memory
 * profiles are on (pkg/sampler Config.Memory). */
#pragma once

SEC("uprobe")
int bprof_alloc(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	if (!is_target(pid))
		return 0;
	stat_inc(STAT_ALLOCS);

	/* This program can be interrupted, or preempted, halfway: it holds the
	 * CPU's scratch buffers for itself while it runs (see scratch_busy). */
	__u32 zero = 0;
	__u32 *busy = bpf_map_lookup_elem(&scratch_busy, &zero);
	if (!busy || *(volatile __u32 *)busy) {
		stat_inc(STAT_SCRATCH_BUSY);
		stat_inc(STAT_MEM_LOST);
		return 0;
	}
	*(volatile __u32 *)busy = 1;
	asm volatile("" ::: "memory");
	struct sample *s = init_sample(KIND_ALLOC, pid, tid);
	if (!s) {
		*(volatile __u32 *)busy = 0;
		return 0;
	}
	s->hdr.addr = PT_REGS_PARM1(ctx);
	s->hdr.size = PT_REGS_PARM2(ctx);
	s->hdr.value = PT_REGS_PARM3(ctx);
	s->hdr.state = (__u32)PT_REGS_PARM4(ctx);
	__u32 u = user_stack(s, 0);
	if (u == 0) {
		s->hdr.flags |= FLAG_USTACK_ERR;
		stat_inc(STAT_USTACK_ERR);
	}
	if (u > MAX_USTACK) /* verifier */
		u = MAX_USTACK;
	s->hdr.ustack_len = u;
	walk_python(s, u);
	__u64 words = (__u64)u + (__u64)s->hdr.py_len * PYFRAME_WORDS;
	__u64 size = sizeof(s->hdr) + words * 8;
	if (size > sizeof(*s)) /* verifier */
		size = sizeof(*s);
	if (bpf_ringbuf_output(&samples, s, size, wakeup_flags())) {
		stat_inc(STAT_RING_FULL);
		stat_inc(STAT_MEM_LOST);
	}
	asm volatile("" ::: "memory");
	*(volatile __u32 *)busy = 0;
	return 0;
}
