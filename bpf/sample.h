/* Building and sending one sample: header, kernel and user stacks. Shared by
 * the on-CPU (perf event) and off-CPU (scheduler) programs. */
#pragma once

static __always_inline struct sample *new_sample(__u32 kind, __u32 pid, __u32 tid)
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

/* Kernel stack at data[0], user stack right after it. Returns the words used. */
static __always_inline __u32 collect_stacks(void *ctx, struct sample *s)
{
	long n = bpf_get_stack(ctx, s->data, MAX_KSTACK * 8, 0);
	if (n < 0) {
		s->hdr.flags |= FLAG_KSTACK_ERR;
		stat_inc(STAT_KSTACK_ERR);
		n = 0;
	}
	__u32 k = (__u32)n / 8;
	if (k > MAX_KSTACK) /* verifier */
		k = MAX_KSTACK;
	long m = bpf_get_stack(ctx, &s->data[k], MAX_USTACK * 8, BPF_F_USER_STACK);
	if (m < 0) {
		s->hdr.flags |= FLAG_USTACK_ERR;
		stat_inc(STAT_USTACK_ERR);
		m = 0;
	}
	__u32 u = (__u32)m / 8;
	if (u > MAX_USTACK) /* verifier */
		u = MAX_USTACK;
	s->hdr.kstack_len = k;
	s->hdr.ustack_len = u;
	return k + u;
}

static __always_inline void submit(struct sample *s)
{
	__u64 words = (__u64)s->hdr.kstack_len + s->hdr.ustack_len +
		      (__u64)s->hdr.py_len * PYFRAME_WORDS;
	__u64 size = sizeof(s->hdr) + words * 8;
	if (size > sizeof(*s)) /* verifier */
		size = sizeof(*s);
	if (bpf_ringbuf_output(&samples, s, size, 0))
		stat_inc(STAT_RING_FULL);
}
