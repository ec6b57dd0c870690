/* Maps shared by every bprof program. */
#pragma once

/* Target processes by tgid, one bit each (bit tgid % 64 of word tgid / 64),
 * for every PID Linux can give (PID_MAX_LIMIT, 4M: 512 KiB). The verifier
 * turns an array lookup into a load, where a hash lookup costs 60-100 ns
 * here: the switch program asks twice on every context switch of the
 * machine. */
#define TARGET_WORDS ((4 << 20) / 64)
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TARGET_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} targets SEC(".maps");

static __always_inline int is_target(__u32 tgid)
{
	__u32 word = tgid / 64;
	__u64 *bits = bpf_map_lookup_elem(&targets, &word);
	return bits && (*bits >> (tgid % 64)) & 1;
}

/* Samples to user space. Sized in Go before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 << 20);
} samples SEC(".maps");

/* Per-CPU scratch for building one sample: too big for the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sample);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* CPython processes: how to walk their frames. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct py_proc);
} py_procs SEC(".maps");

/* Thread (tgid, thread pointer) to its PyThreadState address. Written by
 * user space only; not preallocated, as most hosts have far fewer threads. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct py_thread_key);
	__type(value, __u64);
} py_threads SEC(".maps");

/* Unwind rows of every loaded file, each file's rows a sorted run. The size
 * is set in Go before load; user space allocates the runs and writes them
 * through a mapping of the array (mmapable), not a map update per row. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_row);
} unwind_rows SEC(".maps");

/* Executable mappings of each target process, by tgid. Values are 16 KiB, so
 * they are allocated only for processes that have one. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct unwind_proc);
} unwind_procs SEC(".maps");

/* A global function: one lookup for the verifier to check and patch, not
 * one per counting site (there are ~30). */
__noinline int stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
	return 0;
}

/* Send user space a request (a header with no stacks) about s's process, at
 * most once per min_ns: *last is the time of the previous one. The ring's
 * wakeup is forced, as user space must act on it. */
static __always_inline void ask_user_space(struct sample *s, __u64 *last, __u32 kind, __u32 sent_stat, __u64 min_ns)
{
	__u64 now = s->hdr.ktime;
	if (now - *last < min_ns)
		return;
	*last = now;
	struct sample_hdr h = s->hdr;
	h.kind = kind;
	h.kstack_len = h.ustack_len = h.py_len = 0;
	if (bpf_ringbuf_output(&samples, &h, sizeof(h), BPF_RB_FORCE_WAKEUP) == 0)
		stat_inc(sent_stat);
	else
		stat_inc(STAT_RING_FULL);
}
