/* Off-CPU time from the scheduler: a tp_btf program on sched_switch.
 *
 * The tracepoint runs in the context of the thread leaving the CPU, so that is
 * the only moment its stacks can be read. Reading them costs microseconds,
 * too much to do on every switch of a thread that switches 50,000 times a
 * second, so each thread has a token bucket: a capture costs a token, tokens
 * come back one per capture_every_ns, up to CAPTURE_BURST. A thread that
 * sleeps now and then is always captured; one that switches all the time is
 * captured at most 1/capture_every_ns times a second. When the
 * thread comes back, a wait of at least min_offcpu_ns with a captured stack is
 * sent as a sample with its exact duration; every other wait is summed per
 * thread in offcpu_totals, so the wall time of every thread stays exact. */
#pragma once

const volatile __u64 min_offcpu_ns = 1000000;	  /* 1 ms: shorter waits are summed, not sent */
const volatile __u64 capture_every_ns = 10000000; /* 10 ms: at most 100 captures/s per thread */
#define CAPTURE_BURST 20

/* Set by user space when the recording starts: time off CPU before it is
 * not part of the profile. Index 0. */
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

/* The stack each thread had when it last left the CPU with a capture.
 * Preallocated: elements this large (5 KiB) cannot be allocated on demand in
 * the scheduler's context, where updates of a NO_PREALLOC map failed. 2048
 * threads blocked with a captured stack at once; past that, waits are
 * counted as uncaptured. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2048);
	__type(key, __u32);
	__type(value, struct sample);
} offcpu_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct offcpu_key);
	__type(value, struct offcpu_total);
} offcpu_totals SEC(".maps");

static __always_inline void offcpu_add(__u32 tid, __u32 pid, __u32 kind, __u64 ns)
{
	struct offcpu_key k = { .tid = tid, .kind = kind };
	struct offcpu_total *t = bpf_map_lookup_elem(&offcpu_totals, &k);
	if (t) {
		__sync_fetch_and_add(&t->ns, ns);
		__sync_fetch_and_add(&t->count, 1);
		return;
	}
	struct offcpu_total n = { .ns = ns, .count = 1, .pid = pid };
	if (bpf_map_update_elem(&offcpu_totals, &k, &n, BPF_NOEXIST)) {
		t = bpf_map_lookup_elem(&offcpu_totals, &k); /* lost a race: add to the winner */
		if (t)
			__sync_fetch_and_add(&t->ns, ns);
		else
			stat_inc(STAT_OFFCPU_LOST);
	}
}

/* The target thread now leaving the CPU (the current task). */
static __always_inline void switch_out(void *ctx, __u32 pid, __u32 tid, __u32 runnable, __u64 now)
{
	struct offcpu_state *st = bpf_map_lookup_elem(&offcpu_threads, &tid);
	if (!st) {
		struct offcpu_state n = { .pid = pid };
		bpf_map_update_elem(&offcpu_threads, &tid, &n, BPF_ANY);
		st = bpf_map_lookup_elem(&offcpu_threads, &tid);
		if (!st)
			return;
	}
	st->start = now;
	st->pid = pid;
	st->state = runnable;
	st->captured = 0;
	__u64 refill = (now - st->last_capture) / capture_every_ns;
	if (refill) {
		st->tokens = st->tokens + refill > CAPTURE_BURST ? CAPTURE_BURST : st->tokens + refill;
		st->last_capture = now;
	}
	if (!st->tokens)
		return;

	struct sample *s = new_sample(KIND_OFFCPU, pid, tid);
	if (!s)
		return;
	s->hdr.state = runnable;
	__u32 used = collect_stacks(ctx, s);
	walk_python(s, used);
	if (bpf_map_update_elem(&offcpu_stacks, &tid, s, BPF_ANY) == 0) {
		st->captured = 1;
		st->tokens--;
	} else {
		stat_inc(STAT_OFFCPU_NO_SLOT);
	}
}

/* The target thread now getting the CPU back (next; not the current task). */
static __always_inline void switch_in(__u32 pid, __u32 tid, __u64 now)
{
	struct offcpu_state *st = bpf_map_lookup_elem(&offcpu_threads, &tid);
	if (!st) {
		/* Off CPU since before we looked: account from the recording's start. */
		__u32 zero = 0;
		__u64 *epoch = bpf_map_lookup_elem(&offcpu_epoch, &zero);
		if (epoch && *epoch && now > *epoch)
			offcpu_add(tid, pid, OFFCPU_BEFORE, now - *epoch);
		struct offcpu_state n = { .pid = pid };
		bpf_map_update_elem(&offcpu_threads, &tid, &n, BPF_ANY);
		return;
	}
	if (!st->start)
		return;
	__u64 delta = now - st->start;
	st->start = 0;
	if (delta < min_offcpu_ns) {
		/* The hot path of a thread that switches all the time: add to its
		 * own entry, already at hand, rather than look up another map. */
		st->short_ns += delta;
		st->short_count++;
		return;
	}
	struct sample *s = st->captured ? bpf_map_lookup_elem(&offcpu_stacks, &tid) : 0;
	if (!s) {
		offcpu_add(tid, pid, OFFCPU_UNCAPTURED, delta);
		return;
	}
	s->hdr.value = delta;
	s->hdr.ktime = now;
	s->hdr.state = st->state;
	submit(s);
}
