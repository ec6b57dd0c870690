/* Wall time from the scheduler: a tp_btf program on sched_switch.
 *
 * Every wait of a target thread, however short, is summed in the kernel under
 * (thread, state, site): in one of the thread's own wait slots, or in
 * wait_totals when they are all in use; nothing is sent per wait. A site is a
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
 * exactly the period, by construction: on-CPU time (oncpu_ns) plus waits.
 * A wait slot is tagged with the epoch of the period it sums; user space reads
 * the slots of a period once it has ended, then says so (EPOCH_TAKEN), and
 * only then may the kernel reuse them. */
#pragma once

const volatile __u64 capture_every_ns = 10000000; /* 10 ms: at most 100 walks/s per thread */
#define CAPTURE_BURST 20
#define KEPT_NS 10000000 /* 10 ms: how long a thread's last site is trusted to be in wait_stacks */
#define TASK_DEAD 0x80 /* prev_state of a thread switching out for the last time */

/* Set by user space, one aligned word each (so read whole): the start of
 * the current period (ktime), and the start of the last period whose wait
 * slots it has read. */
#define EPOCH_START 0
#define EPOCH_TAKEN 1
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} offcpu_epoch SEC(".maps");

/* Not preallocated: 65,536 entries of ~270 bytes took ~18 MB of kernel
 * memory and ~45 ms of CPU at every start, for the few hundred threads a
 * host's targets have. Entries are made in the scheduler's context by the
 * BPF allocator, which works there; lookups cost the same. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
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

/* Waits that found the thread's slots in use: few, so not preallocated. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct wait_key);
	__type(value, struct wait_total);
} wait_totals SEC(".maps");

static __always_inline __u64 epoch_word(__u32 i)
{
	__u64 *w = bpf_map_lookup_elem(&offcpu_epoch, &i);
	return w ? *w : 0;
}

static __always_inline __u64 period_start(void)
{
	return epoch_word(EPOCH_START);
}

/* Adds a wait to the thread's slot for (site, state) in this period, or to
 * a free slot. Only the thread's own switches write its slots, one at a
 * time, and user space reads a period's slots only after it has ended, so
 * plain adds do. A slot in the thread's entry costs an array walk; a
 * wait_totals entry costs a hash lookup of a 24-byte key, ~75 ns here, a
 * sixth of a whole switch. */
__noinline int wait_add(struct offcpu_state *st __arg_nonnull, const struct wait_key *wk __arg_nonnull, __u64 ns)
{
	/* A global function (checked once, not at each of its three callers);
	 * the key comes whole, as a global function takes five arguments. */
	struct wait_key k = *wk;
	__u32 state = k.state;
	__u64 site = k.site, epoch = k.epoch;
	for (int i = 0; i < WAIT_SLOTS; i++) {
		struct wait_slot *w = &st->slots[i];
		if (w->epoch == epoch && w->site == site && w->state == state) {
			w->ns += ns;
			w->count++;
			return 0;
		}
	}
	/* A new (site, state) this period: a slot read by user space, or never
	 * used (epochs only grow). */
	__u64 taken = epoch_word(EPOCH_TAKEN);
	for (int i = 0; i < WAIT_SLOTS; i++) {
		struct wait_slot *w = &st->slots[i];
		if (w->epoch <= taken) {
			w->site = site;
			w->epoch = epoch;
			w->state = state;
			w->ns = ns;
			w->count = 1;
			return 0;
		}
	}
	stat_inc(STAT_WAIT_SPILLED);

	/* Keyed by period too, so user space takes only the ended period's. */
	struct wait_total *t = bpf_map_lookup_elem(&wait_totals, &k);
	if (t) {
		/* Plain adds: only this thread's own switches write its totals,
		 * and the scheduler runs those one at a time. */
		t->ns += ns;
		t->count++;
		return 0;
	}
	struct wait_total n = { .ns = ns, .count = 1, .pid = st->pid };
	if (bpf_map_update_elem(&wait_totals, &k, &n, BPF_NOEXIST)) {
		t = bpf_map_lookup_elem(&wait_totals, &k); /* lost a race: add to the winner */
		if (t)
			__sync_fetch_and_add(&t->ns, ns);
		else
			stat_inc(STAT_OFFCPU_LOST);
	}
	return 0;
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
 * waits with one fingerprint are taken to have one stack. Never below
 * SITE_FIRST.
 *
 * The native part is three loads. The Python part is three to four reads of
 * the target's memory, ~800 ns here, more than the rest of a switch: it is
 * made at most once per FP_FULL_NS for waits at the native place of the
 * thread's last full fingerprint, which reuse that one's site. So a thread
 * that switches up to 1,000 times a second pays for every wait, and one that
 * switches more (a GIL handoff storm) pays at most that often where it
 * repeats itself. The thread's PyThreadState and the interpreter's offsets
 * are looked up once per PY_LOOKUP_NS, not per switch. */
#define FP_FULL_NS 1000000	 /* 1 ms */
#define PY_LOOKUP_NS 10000000 /* 10 ms: how soon a thread's new interpreter state is seen */

static __always_inline __u64 site_of(__u64 h)
{
	return h < SITE_FIRST ? h + SITE_FIRST : h;
}

static __always_inline __u64 wait_site(struct task_struct *task, struct offcpu_state *st, __u32 pid,
				       __u32 runnable, __u64 now)
{
	/* task is a trusted pointer (a tp_btf argument) and so is its register
	 * frame: plain loads, no probe-read helper calls. */
	struct pt_regs___kernel *regs = (void *)bpf_task_pt_regs(task);
	__u64 h = mix64(runnable, regs->ip);
	h = mix64(h, regs->sp);

	if (now - st->py_at >= PY_LOOKUP_NS) {
		struct py_proc *proc = bpf_map_lookup_elem(&py_procs, &pid);
		struct py_thread_key key = { .pid = pid, .fsbase = task->thread.fsbase };
		__u64 *tstate = proc ? bpf_map_lookup_elem(&py_threads, &key) : 0;
		st->py_tstate = tstate ? *tstate : 0;
		if (proc)
			st->py_off = proc->off;
		st->py_at = now;
		st->fp_at = 0;
	}
	if (!st->py_tstate)
		return site_of(h);
	if (h == st->fp_native && now - st->fp_at < FP_FULL_NS)
		return st->fp_site;

	__u32 zero = 0;
	struct py_scratch *b = bpf_map_lookup_elem(&py_scratch, &zero);
	/* A preempted uprobe program (memory.h) may be using this CPU's
	 * py_scratch: then the fingerprint is the native part only. */
	if (!b || scratch_is_busy())
		return site_of(h);
	struct py_offsets *o = &st->py_off;
	__u64 native = h;
	__u64 frame = 0;
	if (bpf_probe_read_user(&frame, sizeof(frame), (void *)(st->py_tstate + o->tstate_frame)))
		return site_of(h);
	if (o->cframe_current >= 0 && frame &&
	    bpf_probe_read_user(&frame, sizeof(frame), (void *)(frame + o->cframe_current)))
		return site_of(h);
	__u32 size = o->frame_size;
	if (size == 0 || size > PY_FRAME_BUF) /* verifier */
		return site_of(h);
	for (int i = 0; i < 2 && frame; i++) {
		if (bpf_probe_read_user(b->bytes, size, (void *)frame))
			break;
		h = mix64(h, frame);
		h = mix64(h, frame_u64(b, 0, o->frame_code));
		h = mix64(h, frame_u64(b, 0, o->frame_instr));
		frame = frame_u64(b, 0, o->frame_previous);
	}
	st->fp_native = native;
	st->fp_site = site_of(h);
	st->fp_at = now;
	return st->fp_site;
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
	if (wait) {
		struct wait_key k = { .tid = tid, .state = ran_last ? st->state : 1,
				      .site = ran_last ? st->site : SITE_UNCAPTURED, .epoch = epoch };
		wait_add(st, &k, wait);
	}
	stat_inc(STAT_SWITCH_UNSEEN);
}

/* Walks the current thread's stacks into wait_stacks under site; 0 on
 * success. A global function, so the verifier checks it once, on its own:
 * inlined, the walker was checked again for every path of the switch
 * program that reaches it, close to the verifier's 1M-instruction limit. */
__noinline int capture_wait(void *ctx __arg_ctx, __u32 pid, __u32 tid, __u32 runnable, __u64 site)
{
	struct sample *s = new_sample(KIND_OFFCPU, pid, tid);
	if (!s)
		return -1;
	s->hdr.state = runnable;
	__u32 used = collect_stacks(ctx, s);
	walk_python(s, used);
	return bpf_map_update_elem(&wait_stacks, &site, s, BPF_ANY);
}

/* The target thread now leaving the CPU (the current task). */
static __always_inline void switch_out(void *ctx, struct task_struct *task, __u32 pid, __u32 tid,
				       __u32 runnable, __u32 dead, __u64 runtime, __u64 now)
{
	struct offcpu_state *st = bpf_map_lookup_elem(&offcpu_threads, &tid);
	/* Another process's entry: its TID was reused after that thread ended
	 * while its process was no target (user space drops such entries only
	 * at the end of the period). */
	if (!st || st->pid != pid) {
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

	__u64 site = wait_site(task, st, pid, runnable, now);
	/* A thread mostly waits where it waited last: a site found in
	 * wait_stacks within KEPT_NS is taken as still there without a lookup.
	 * Looking again every KEPT_NS keeps the site referenced, so the LRU
	 * does not take it for unused. User space keeps a site's stack once it
	 * has read it, so a site dropped in between costs a stack only when
	 * it goes before its first read, as it could without the memo. */
	if (site == st->kept_site && now - st->kept_at < KEPT_NS) {
		st->site = site;
		stat_inc(STAT_WAIT_CACHED);
		return;
	}
	if (bpf_map_lookup_elem(&wait_stacks, &site)) {
		st->site = site;
		st->kept_site = site;
		st->kept_at = now;
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
	if (capture_wait(ctx, pid, tid, runnable, site) == 0) {
		st->site = site;
		st->kept_site = site;
		st->kept_at = now;
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
	if (!st || st->dead || st->pid != pid) {
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
		if (wait) {
			struct wait_key k = { .tid = tid, .state = st->state, .site = st->site, .epoch = epoch };
			wait_add(st, &k, wait);
		}
	} else if (st->oncpu_since) {
		/* Taken for running since the last switch seen (or since its
		 * process was added in state R): it ran part of that time. */
		split_unseen(st, tid, st->oncpu_since, now, runtime, epoch, 0);
	}
	st->start = 0;
	st->oncpu_since = now;
	st->runtime = runtime;
}
