/* Wall time from the scheduler: a tp_btf program on sched_switch.
 *
 * Every wait of a target thread, however short, is summed in the kernel under
 * (thread, state, site) in wait_totals; nothing is sent per wait. A site is a
 * cheap fingerprint of where the thread waits (wait_site below), and the
 * stack it had there is kept once in wait_stacks, an LRU map keyed by site:
 * a thread that waits at the same few places thousands of times a second has
 * its stack walked once per place, not once per wait. A site not in the map
 * is walked only if the thread has a capture token left (a token per
 * capture_every_ns, up to CAPTURE_BURST); otherwise the wait is summed under
 * SITE_UNCAPTURED.
 *
 * Periods: user space sets offcpu_epoch to the start of the current period
 * and takes, at the end of one, the part of every open wait (and of every
 * running thread's time on the CPU) before that instant; the kernel counts
 * only what comes after the epoch. So a thread's wall time in a period is
 * exactly the period, by construction: on-CPU time (oncpu_ns) plus waits. */
#pragma once

const volatile __u64 capture_every_ns = 10000000; /* 10 ms: at most 100 walks/s per thread */
#define CAPTURE_BURST 20
#define TASK_DEAD 0x80 /* prev_state of a thread switching out for the last time */

/* Start of the current period (ktime), set by user space. Index 0. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} offcpu_epoch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct offcpu_state);
} offcpu_threads SEC(".maps");

/* The stack seen at each wait site. LRU: a site not waited at for long gives
 * way to new ones with no help from user space, which copies a site's stack
 * the first time it drains a total of that site. Preallocated: 5 KiB values
 * cannot be allocated on demand in the scheduler's context. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 2048);
	__type(key, __u64);
	__type(value, struct sample);
} wait_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct wait_key);
	__type(value, struct wait_total);
} wait_totals SEC(".maps");

static __always_inline __u64 period_start(void)
{
	__u32 zero = 0;
	__u64 *epoch = bpf_map_lookup_elem(&offcpu_epoch, &zero);
	return epoch ? *epoch : 0;
}

static __always_inline void wait_add(__u32 tid, __u32 pid, __u32 state, __u64 site, __u64 ns)
{
	struct wait_key k = { .tid = tid, .state = state, .site = site };
	struct wait_total *t = bpf_map_lookup_elem(&wait_totals, &k);
	if (t) {
		__sync_fetch_and_add(&t->ns, ns);
		__sync_fetch_and_add(&t->count, 1);
		return;
	}
	struct wait_total n = { .ns = ns, .count = 1, .pid = pid };
	if (bpf_map_update_elem(&wait_totals, &k, &n, BPF_NOEXIST)) {
		t = bpf_map_lookup_elem(&wait_totals, &k); /* lost a race: add to the winner */
		if (t)
			__sync_fetch_and_add(&t->ns, ns);
		else
			stat_inc(STAT_OFFCPU_LOST);
	}
}

static __always_inline __u64 mix64(__u64 h, __u64 v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

/* A fingerprint of where the current thread waits: the user ip and sp it
 * entered the kernel with, whether it was preempted, and on a Python thread
 * the top two frames (address, code object, instruction). The native part
 * pins the C stack; the Python part tells apart waits at the same C depth in
 * different Python code (3.11+ runs Python calls without C recursion). Two
 * waits with one fingerprint are taken to have one stack. Costs two to four
 * small reads, against tens for a walk. Never below SITE_FIRST. */
static __always_inline __u64 wait_site(__u32 pid, __u64 fsbase, __u32 runnable)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs___kernel *regs = (void *)bpf_task_pt_regs(task);
	__u64 h = mix64(runnable, BPF_CORE_READ(regs, ip));
	h = mix64(h, BPF_CORE_READ(regs, sp));

	struct py_proc *proc = bpf_map_lookup_elem(&py_procs, &pid);
	struct py_thread_key key = { .pid = pid, .fsbase = fsbase };
	__u64 *tstate = proc ? bpf_map_lookup_elem(&py_threads, &key) : 0;
	__u32 zero = 0;
	struct py_scratch *b = bpf_map_lookup_elem(&py_scratch, &zero);
	/* A preempted uprobe program (memory.h) may be using this CPU's
	 * py_scratch: then the fingerprint is the native part only. */
	if (!proc || !tstate || !b || scratch_is_busy())
		goto out;
	struct py_offsets o = proc->off;
	__u64 frame = 0;
	if (bpf_probe_read_user(&frame, sizeof(frame), (void *)(*tstate + o.tstate_frame)))
		goto out;
	if (o.cframe_current >= 0 && frame &&
	    bpf_probe_read_user(&frame, sizeof(frame), (void *)(frame + o.cframe_current)))
		goto out;
	__u32 size = o.frame_size;
	if (size == 0 || size > PY_FRAME_BUF) /* verifier */
		goto out;
	for (int i = 0; i < 2 && frame; i++) {
		if (bpf_probe_read_user(b->bytes, size, (void *)frame))
			break;
		h = mix64(h, frame);
		h = mix64(h, frame_u64(b, 0, o.frame_code));
		h = mix64(h, frame_u64(b, 0, o.frame_instr));
		frame = frame_u64(b, 0, o.frame_previous);
	}
out:
	return h < SITE_FIRST ? h + SITE_FIRST : h;
}

/* Add [from, to) clipped at the period's start: time before it was taken by
 * user space at the end of the last period. */
static __always_inline __u64 clip(__u64 from, __u64 to, __u64 epoch)
{
	if (from < epoch)
		from = epoch;
	return to > from ? to - from : 0;
}

/* A switch the tracepoint never showed. It happens here: switches away from
 * some short-lived kernel workers do not reach the program, so a thread is
 * seen leaving the CPU twice, or coming back twice, in a row. The interval
 * since the last switch seen, [from, now), then holds both a run and a wait;
 * the thread's run time (se.sum_exec_runtime) says how much of it ran. The
 * run is put where it must be (the end when the thread was last seen leaving,
 * the start when it was last seen arriving), so the two add up to the
 * interval and nothing is lost. */
static __always_inline void split_unseen(struct offcpu_state *st, __u32 tid, __u64 from, __u64 now,
					 __u64 runtime, __u64 epoch, int ran_last)
{
	__u64 len = now > from ? now - from : 0;
	__u64 ran = runtime > st->runtime ? runtime - st->runtime : 0;
	if (ran > len)
		ran = len;
	__u64 run_from = ran_last ? now - ran : from;
	__u64 wait_from = ran_last ? from : from + ran;
	st->oncpu_ns += clip(run_from, run_from + ran, epoch);
	__u64 wait = clip(wait_from, wait_from + len - ran, epoch);
	if (wait)
		wait_add(tid, st->pid, ran_last ? st->state : 1, ran_last ? st->site : SITE_UNCAPTURED, wait);
	stat_inc(STAT_SWITCH_UNSEEN);
}

/* The target thread now leaving the CPU (the current task). */
static __always_inline void switch_out(void *ctx, __u32 pid, __u32 tid, __u32 runnable, __u32 dead,
				       __u64 runtime, __u64 now)
{
	struct offcpu_state *st = bpf_map_lookup_elem(&offcpu_threads, &tid);
	if (!st) {
		struct offcpu_state n = { .pid = pid, .tokens = CAPTURE_BURST, .last_refill = now, .runtime = runtime };
		bpf_map_update_elem(&offcpu_threads, &tid, &n, BPF_ANY);
		st = bpf_map_lookup_elem(&offcpu_threads, &tid);
		if (!st)
			return;
	}
	__u64 epoch = period_start();
	if (st->oncpu_since)
		st->oncpu_ns += clip(st->oncpu_since, now, epoch);
	else if (st->start)
		split_unseen(st, tid, st->start, now, runtime, epoch, 1);
	st->oncpu_since = 0;
	st->runtime = runtime;
	if (dead) {
		/* Its last switch: no wait follows. User space drops the entry
		 * once it has read its on-CPU time. */
		st->start = 0;
		st->dead = 1;
		return;
	}
	st->start = now;
	st->pid = pid;
	st->state = runnable;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 fsbase = BPF_CORE_READ(task, thread.fsbase);
	__u64 site = wait_site(pid, fsbase, runnable);
	if (bpf_map_lookup_elem(&wait_stacks, &site)) {
		st->site = site;
		stat_inc(STAT_WAIT_CACHED);
		return;
	}
	__u64 refill = (now - st->last_refill) / capture_every_ns;
	if (refill) {
		st->tokens = st->tokens + refill > CAPTURE_BURST ? CAPTURE_BURST : st->tokens + refill;
		st->last_refill = now;
	}
	st->site = SITE_UNCAPTURED;
	/* A preemption lands anywhere in a run, rarely at a place seen before,
	 * and one left without a stack is spread over the thread's CPU samples,
	 * which stand for the same places: keep half the tokens for blocking
	 * waits, which have no such stand-in. */
	if (!st->tokens || (runnable && st->tokens <= CAPTURE_BURST / 2)) {
		stat_inc(STAT_WAIT_UNCAPTURED);
		return;
	}
	struct sample *s = new_sample(KIND_OFFCPU, pid, tid);
	if (!s)
		return;
	s->hdr.state = runnable;
	__u32 used = collect_stacks(ctx, s);
	walk_python(s, used);
	if (bpf_map_update_elem(&wait_stacks, &site, s, BPF_ANY) == 0) {
		st->site = site;
		st->tokens--;
		stat_inc(STAT_WAIT_CAPTURED);
	} else {
		stat_inc(STAT_OFFCPU_NO_SLOT);
	}
}

/* The target thread now getting the CPU back (next; not the current task). */
static __always_inline void switch_in(__u32 pid, __u32 tid, __u64 runtime, __u64 now)
{
	struct offcpu_state *st = bpf_map_lookup_elem(&offcpu_threads, &tid);
	if (!st || st->dead) {
		/* A thread born since its process was added (or a reused TID):
		 * its time counts from now. */
		struct offcpu_state n = { .pid = pid, .oncpu_since = now, .tokens = CAPTURE_BURST,
					  .last_refill = now, .runtime = runtime };
		bpf_map_update_elem(&offcpu_threads, &tid, &n, BPF_ANY);
		return;
	}
	__u64 epoch = period_start();
	if (st->start) {
		__u64 wait = clip(st->start, now, epoch);
		if (wait)
			wait_add(tid, pid, st->state, st->site, wait);
	} else if (st->oncpu_since) {
		/* Taken for running since the last switch seen (or since its
		 * process was added in state R): it ran part of that time. */
		split_unseen(st, tid, st->oncpu_since, now, runtime, epoch, 0);
	}
	st->start = 0;
	st->oncpu_since = now;
	st->runtime = runtime;
}
