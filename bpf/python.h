/* Walking a CPython stack from a thread's PyThreadState, for every supported
 * version. Which fields to read comes from struct py_offsets (pkg/python's
 * table); this file knows only the shape of the walk:
 *
 *   tstate -> [cframe ->] current frame -> previous -> ... -> NULL
 *
 * Per frame we keep the code object address, 8 bytes read from the code object
 * (so user space can tell a freed-and-reused address from the original) and the
 * instruction offset. Names and line numbers are left to user space: they need
 * unbounded work (strings, line tables) that does not belong here. */
#pragma once

#include "scratch.h"

#define PY_FRAME_BUF 128	/* the largest py_offsets.frame_size */
#define PAGE_MASK_4K (~4095ULL)
#define PY_REFRESH_NS (250 * 1000 * 1000ULL) /* at most 4 thread refreshes a second per process */

/* The check bytes of recently seen code objects, per CPU: a hit is a map
 * access instead of a probe read, which costs 75-150 ns here, half of what a
 * frame costs. An entry is trusted for CODE_CACHE_NS; a code object freed and
 * another allocated at its address within that time gets the old check bytes.
 * Such frames are marked PYFRAME_CACHED, and user space checks their bytes
 * against the object after the sample: a frame shows as [unknown python],
 * never under the name of the code that used to live there. */
#define CODE_CACHE_SLOTS 1024	/* a power of two */
#define CODE_CACHE_NS (250 * 1000 * 1000ULL)

struct code_cache_entry {
	__u64 code;
	__u64 check;
	__u64 time;
};

struct code_cache {
	struct code_cache_entry e[CODE_CACHE_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct code_cache);
} code_cache SEC(".maps");

/* Read the pointer-sized field at a table offset of the frame that starts
 * cur bytes into the window. Every such field is 8-byte aligned in every
 * CPython (user space checks), and so are frames. verifier: the mask alone
 * bounds the index. */
static __always_inline __u64 frame_u64(struct py_scratch *b, __u32 cur, __s16 off)
{
	return b->words[((cur + (__u32)off) >> 3) & (PY_WINDOW / 8 - 1)];
}

static __always_inline __u8 frame_u8(struct py_scratch *b, __u32 cur, __s16 off)
{
	return b->bytes[(cur + (__u32)off) & (PY_WINDOW - 1)];
}

/* Pointers of one walk, shared with the bpf_loop callback. Its counters and
 * addresses are in the CPU's scratch instead (struct py_walk_vars): on the
 * stack, the verifier tracked their values and checked the callback again
 * for each new combination; in a map value they are unknown and one check
 * covers every step. */
struct py_walk {
	struct sample *s;
	struct py_scratch *b;
	struct code_cache *cache;
};

/* One step of the walk. bpf_loop keeps the verifier's work to one pass over
 * this body whatever the depth, where an open-coded loop explodes. */
static long py_step(__u64 i, struct py_walk *w)
{
	struct py_walk_vars *v = &w->b->py;
	if (!v->frame)
		return 1;
	struct py_scratch *b = w->b;
	__u32 size = v->size;
	if (size == 0 || size > PY_FRAME_BUF) /* verifier */
		return 1;
	if (v->frame < v->win_lo || v->frame + size > v->win_lo + v->win_len) {
		/* Not in the window: read this frame and, on 3.11+, what lies
		 * below it in the same page (never a lower page: it may be
		 * unmapped, and then the whole read would fail). */
		__u64 lo = v->frame;
		if (v->o.frame_owner >= 0) {
			lo = v->frame + size - PY_WINDOW;
			if (lo < (v->frame & PAGE_MASK_4K) || lo > v->frame)
				lo = v->frame & PAGE_MASK_4K;
		}
		__u64 len = v->frame + size - lo;
		clamp_le(len, PY_WINDOW); /* verifier */
		if (len < size || bpf_probe_read_user(b->bytes, len, (void *)lo)) {
			v->err = 1;
			return 1;
		}
		v->win_lo = lo;
		v->win_len = len;
	}
	__u32 cur = v->frame - v->win_lo;
	__u64 code = frame_u64(b, cur, v->o.frame_code) & ~(__u64)v->o.code_tag_mask;
	__u64 prev = frame_u64(b, cur, v->o.frame_previous);
	if (v->o.frame_owner >= 0 && frame_u8(b, cur, v->o.frame_owner) >= v->o.skip_owner) {
		/* An entry shim (3.12+), not Python code: the frame before it
		 * (leafward) is the first one its eval call ran. */
		__u64 last = (__u64)v->base + (__u64)v->n * PYFRAME_WORDS - 1;
		if (v->n > 0 && last < DATA_WORDS) {
			clamp_le(last, DATA_WORDS - 1);
			w->s->data[last] |= PYFRAME_ENTRY;
		}
		v->frame = prev;
		return 0;
	}
	__s64 instr;
	if (v->o.instr_is_ptr)
		instr = (__s64)(frame_u64(b, cur, v->o.frame_instr) - code - (__u64)v->o.code_adaptive);
	else
		instr = (__s32)frame_u64(b, cur, v->o.frame_instr);
	__u64 check = 0;
	__u64 flags = 0;
	if (code) {
		/* code objects are 16-byte aligned: drop the bits that never vary */
		__u32 slot = ((code >> 4) ^ (code >> 14)) & (CODE_CACHE_SLOTS - 1);
		struct code_cache_entry *e = &w->cache->e[slot];
		__u64 now = w->s->hdr.ktime;
		if (e->code == code && now - e->time < CODE_CACHE_NS) {
			check = e->check;
			flags |= PYFRAME_CACHED;
		} else {
			if (bpf_probe_read_user(&check, sizeof(check), (void *)(code + v->o.code_check))) {
				v->err = 1;
				return 1;
			}
			e->code = code;
			e->check = check;
			e->time = now;
		}
	}
	__u64 idx = (__u64)v->base + (__u64)v->n * PYFRAME_WORDS;
	if (idx > DATA_WORDS - PYFRAME_WORDS)
		return 1;
	clamp_le(idx, DATA_WORDS - PYFRAME_WORDS);
	struct sample *s = w->s;
	s->data[idx] = code;
	s->data[idx + 1] = check;
	if (v->o.frame_is_entry >= 0 && frame_u8(b, cur, v->o.frame_is_entry))
		flags |= PYFRAME_ENTRY;
	s->data[idx + 2] = (__u32)instr | flags;
	v->n++;
	v->frame = prev;
	return 0;
}

/* Append the Python frames of the current thread to s->data, starting at word
 * base (leaf first). */
__noinline int walk_python(struct sample *s __arg_nonnull, __u32 base)
{
	struct py_proc *proc = bpf_map_lookup_elem(&py_procs, &s->hdr.pid);
	if (!proc)
		return 0;
	s->hdr.flags |= FLAG_PY_TARGET;

	struct py_thread_key key = { .pid = s->hdr.pid, .fsbase = s->hdr.fsbase };
	__u64 *tstate = bpf_map_lookup_elem(&py_threads, &key);
	if (!tstate) {
		s->hdr.flags |= FLAG_PY_UNKNOWN_THREAD;
		stat_inc(STAT_PY_UNKNOWN_THREAD);
		ask_user_space(s, &proc->last_refresh_ns, KIND_NEED_THREADS, STAT_NEED_THREADS_SENT, PY_REFRESH_NS);
		return 0;
	}

	__u32 zero = 0;
	struct py_walk w = { .s = s };
	w.b = bpf_map_lookup_elem(&py_scratch, &zero);
	w.cache = bpf_map_lookup_elem(&code_cache, &zero);
	if (!w.b || !w.cache)
		return 0;
	struct py_walk_vars *v = &w.b->py;
	v->o = proc->off;
	v->base = base;
	v->n = 0;
	v->size = v->o.frame_size;
	v->win_lo = v->win_len = 0;
	v->err = 0;

	if (bpf_probe_read_user(&v->frame, sizeof(v->frame), (void *)(*tstate + v->o.tstate_frame)))
		v->err = 1;
	else if (v->o.cframe_current >= 0 && v->frame &&
		 bpf_probe_read_user(&v->frame, sizeof(v->frame), (void *)(v->frame + v->o.cframe_current)))
		v->err = 1;
	if (!v->err)
		bpf_loop(MAX_PYFRAMES, py_step, &w, 0);

	s->hdr.py_len = v->n;
	if (v->err) {
		s->hdr.flags |= FLAG_PY_READ_ERR;
		stat_inc(STAT_PY_READ_ERR);
	} else if (v->frame) {
		s->hdr.flags |= FLAG_PY_TRUNCATED;
		stat_inc(STAT_PY_TRUNCATED);
	}
	return 0;
}
