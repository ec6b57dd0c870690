/* Native user stacks without frame pointers. CPython and most distribution
 * libraries are built without them, so a frame-pointer walk is wrong after
 * the first frame. Instead, user space turns each mapped file's .eh_frame into
 * a sorted table of rows (pkg/unwind) and loads it into unwind_rows; each
 * target's executable mappings say which run of rows covers them. One step:
 *
 *   find the mapping of pc -> find its row -> CFA = rsp|rbp + offset
 *   -> return address at CFA-8, saved rbp at CFA+8*rbp -> caller's pc, sp, bp
 *
 * Code with no table (JIT, stripped files, a file whose table is still being
 * built) falls back to frame pointers for one step, and the frame found that
 * way is marked FRAME_BY_FP. */
#pragma once

#include "scratch.h"

#define UNWIND_MAP_STEPS 10	/* binary search over MAX_UNWIND_MAPS: log2 + 1 */
#define UNWIND_ROW_STEPS 25	/* binary search over up to 16M rows: log2 + 1 */
#define NEED_MAPS_NS (250 * 1000 * 1000ULL) /* at most 4 refresh requests a second */

/* Where the interrupted registers are in the ucontext a signal trampoline's
 * rsp points at (x86-64 kernel ABI: uc_mcontext.gregs at 40, REG_RBP = 10,
 * REG_RSP = 15, REG_RIP = 16), as words from rbp on. */
#define UC_RBP 120
#define UC_RSP_WORD 5
#define UC_RIP_WORD 6

/* The aligned chunk of the target's stack the walk is in, read into the
 * first STACK_CHUNK bytes of py_scratch (scratch.h). A probe read costs far
 * more than the bytes it copies, and a native stack of 25 frames spans a
 * few KiB, so one read brings in the next several frames; but each line
 * copied costs too: a page at a time cost ~3.4 us a read here, 1 KiB ~1.2
 * us (64 and 256 bytes: more reads, ~0.4-0.6 us each). An aligned chunk
 * never crosses a page, so a read never fails for want of the next page. */
#define STACK_CHUNK 1024	/* a power of two, at most PY_WINDOW */

/* The previous walk on this CPU: the pc, stack pointer, mapping and row of
 * each of its frames, root-most last. A busy thread is sampled in much the same
 * place over and over, and the frames a walk shares with the previous one
 * (all but the few nearest the leaf, as a rule) then cost a look at the
 * next entry of this small array, one cache line a few frames, instead of
 * a row cache entry (a line and often a page of its own a frame) and the
 * binary search over the mappings. The frames are matched by stack pointer
 * (both walks climb the stack) and pc: the same pc in the same mapping has
 * the same row, and the proc's generation says the mappings and their
 * tables have not changed since. */
#define MEMO_FRAMES 64	/* a power of two; frames beyond are looked up */
#define MEMO_SKIP 2	/* entries a step may skip: 2 catches up with a walk one frame a step */

/* 16 bytes, four to a cache line: the pc looked up (a return address - 1;
 * user addresses fit in 47 bits) with its mapping's index in
 * unwind_proc.maps above bit 48, the low half of the stack pointer (it only
 * aligns the walks: a wrong match costs a lookup, never a wrong row, which
 * depends on the pc alone), and the row's rule. */
#define MEMO_PC_MASK ((1ULL << 48) - 1)

struct memo_frame {
	__u64 pc;
	__u32 sp;
	__u8 kind;
	__s8 rbp;
	__u16 cfa;
};

struct walk_memo {
	__u32 pid;
	__u32 gen;		/* unwind_proc.gen it was walked with */
	__u32 n;
	__u32 _pad;
	struct memo_frame f[MEMO_FRAMES];
};

struct walk_memos {
	struct walk_memo m[2];	/* the previous walk and the one being written */
	__u32 cur;		/* which one is being written */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_memos);
} walk_memo SEC(".maps");

/* Pointers of one walk, shared with the bpf_loop callback; its counters and
 * registers are in the CPU's scratch (struct unwind_walk_vars, scratch.h),
 * where the verifier does not track their values. */
struct unwind_walk {
	struct sample *s;
	struct unwind_proc *proc;
	struct py_scratch *buf;
	struct row_cache *rcache;
	struct walk_memo *prev, *next;
};

/* The binary searches are bpf_loop callbacks too: open-coded, their
 * branches multiplied the verifier's work by each step of the walk. */
struct map_search {
	struct unwind_proc *p;
	__u64 pc;
	__u32 lo, hi;
};

static long map_search_step(__u64 i, struct map_search *c)
{
	if (c->hi - c->lo <= 1)
		return 1;
	__u32 mid = c->lo + (c->hi - c->lo) / 2;
	/* verifier: the mask bounds the index into the value */
	if (c->p->maps[mid & (MAX_UNWIND_MAPS - 1)].start <= c->pc)
		c->lo = mid;
	else
		c->hi = mid;
	return 0;
}

/* The mapping of pc, its index at *idx; 0 if none. */
static __always_inline struct unwind_map *find_map(struct unwind_proc *p, __u64 pc, __u32 *idx)
{
	struct map_search c = { .p = p, .pc = pc, .lo = 0, .hi = p->n };
	if (c.hi == 0 || c.hi > MAX_UNWIND_MAPS)
		return 0;
	bpf_loop(UNWIND_MAP_STEPS, map_search_step, &c, 0);
	struct unwind_map *m = &p->maps[c.lo & (MAX_UNWIND_MAPS - 1)];
	if (pc < m->start || pc >= m->end)
		return 0;
	*idx = c.lo;
	return m;
}

struct row_search {
	__u32 pc;
	__u32 lo, hi;
};

static long row_search_step(__u64 i, struct row_search *c)
{
	if (c->hi - c->lo <= 1)
		return 1;
	__u32 mid = c->lo + (c->hi - c->lo) / 2;
	struct unwind_row *r = bpf_map_lookup_elem(&unwind_rows, &mid);
	if (!r)
		return 1;
	if (r->pc <= c->pc)
		c->lo = mid;
	else
		c->hi = mid;
	return 0;
}

/* The last row at or below pc in the mapping's run, or 0. */
static __always_inline struct unwind_row *find_row(struct unwind_map *m, __u64 pc)
{
	__u64 rel = pc - m->bias;
	if (rel > 0xffffffffULL)
		return 0;
	struct row_search c = { .pc = rel, .lo = m->rows, .hi = m->rows + m->nrows };
	__u32 page = (rel >> UNWIND_PAGE_SHIFT) - m->first_page;
	if (m->pages && page < m->pages) {
		/* The rows of pc's page, and the one before them: it covers the
		 * start of the page. */
		__u32 k = m->rows - m->pages - 1 + page;
		struct unwind_row *below = bpf_map_lookup_elem(&unwind_rows, &k);
		k++;
		struct unwind_row *upto = bpf_map_lookup_elem(&unwind_rows, &k);
		if (below && upto && below->pc <= upto->pc && upto->pc <= m->nrows) {
			c.lo = m->rows + (below->pc ? below->pc - 1 : 0);
			c.hi = m->rows + upto->pc;
		}
	}
	bpf_loop(UNWIND_ROW_STEPS, row_search_step, &c, 0);
	__u32 lo = c.lo;
	struct unwind_row *r = bpf_map_lookup_elem(&unwind_rows, &lo);
	if (!r || r->pc > (__u32)rel)
		return 0;
	return r;
}

/* Rows found lately, per CPU, by pc: the same return addresses come back
 * sample after sample, and a hit saves the ~17 steps of a binary search. A
 * table that moves changes its mapping's rows or bias, so a stale entry
 * never matches. */
#define ROW_CACHE_SLOTS 1024	/* a power of two; 32 KiB, the most a per-CPU value may hold */

struct row_cache_entry {
	__u64 pc;
	__u64 bias;
	__u32 rows;
	struct unwind_row row;
	__u32 _pad;
};

struct row_cache {
	struct row_cache_entry e[ROW_CACHE_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct row_cache);
} row_cache SEC(".maps");

/* The row for pc in m into *out; 0 when there is none. */
static __always_inline int lookup_row(struct row_cache *c, struct unwind_map *m, __u64 pc, struct unwind_row *out)
{
	struct row_cache_entry *e = &c->e[(pc ^ (pc >> 11)) & (ROW_CACHE_SLOTS - 1)];
	if (e->pc == pc && e->bias == m->bias && e->rows == m->rows) {
		*out = e->row;
		return 1;
	}
	struct unwind_row *r = find_row(m, pc);
	if (!r)
		return 0;
	*out = *r;
	e->pc = pc;
	e->bias = m->bias;
	e->rows = m->rows;
	e->row = *r;
	return 1;
}

/* The 8-byte word of the target's stack at addr (8-byte aligned), through
 * the chunk buffer. Returns nonzero when it cannot be read. */
static __always_inline int stack_word(struct unwind_walk *w, __u64 addr, __u64 *val)
{
	struct unwind_walk_vars *v = &w->buf->uw;
	__u64 chunk = addr & ~(__u64)(STACK_CHUNK - 1);
	if (addr & 7) /* saved registers are aligned: this is junk */
		return 1;
	if (chunk != v->chunk) {
		v->chunk = 0;
		if (bpf_probe_read_user(w->buf->words, STACK_CHUNK, (void *)chunk))
			return 1;
		v->chunk = chunk;
	}
	*val = w->buf->words[((addr - chunk) >> 3) & (STACK_CHUNK / 8 - 1)];
	return 0;
}

static long unwind_step(__u64 i, struct unwind_walk *w)
{
	struct unwind_walk_vars *v = &w->buf->uw;
	__u64 idx = (__u64)v->base + v->n;
	if (idx >= MAX_KSTACK + MAX_USTACK) {
		stat_inc(STAT_UNWIND_TRUNCATED);
		return 1;
	}
	clamp_le(idx, MAX_KSTACK + MAX_USTACK - 1);
	w->s->data[idx] = v->pc | v->mark;
	v->n++;
	v->mark = 0;

	/* A return address is one past the call, which may be the first byte of
	 * the next function (calls to noreturn functions): look up the call. */
	__u64 pc = v->exact ? v->pc : v->pc - 1;
	struct unwind_map *m = v->have_last ? &w->proc->maps[v->last_idx & (MAX_UNWIND_MAPS - 1)] : 0;
	struct unwind_row row = {}, *r = &row;

	/* The previous walk's frames below this one are passed; the next one
	 * at this place and pc gives the mapping and the row. */
	__u32 j = v->mj;
	__u32 sp32 = v->sp;
	for (int k = 0; k < MEMO_SKIP; k++)
		if (j < v->prev_n && w->prev->f[j & (MEMO_FRAMES - 1)].sp < sp32)
			j++;
	int known = 0;
	if (j < v->prev_n) {
		struct memo_frame *f = &w->prev->f[j & (MEMO_FRAMES - 1)];
		if (f->sp == sp32 && (f->pc & MEMO_PC_MASK) == pc) {
			__u32 fi = (f->pc >> 48) & (MAX_UNWIND_MAPS - 1);
			struct unwind_map *fm = &w->proc->maps[fi];
			if (pc >= fm->start && pc < fm->end) {
				m = fm;
				v->last_idx = fi;
				row.kind = f->kind;
				row.rbp = f->rbp;
				row.cfa = f->cfa;
				known = 1;
				j++;
			}
		}
	}
	v->mj = j;
	if (!known) {
		if (!m || pc < m->start || pc >= m->end)
			m = find_map(w->proc, pc, &v->last_idx);
		if (!m) {
			if (!v->fell_back)
				v->need_maps = 1;
			stat_inc(STAT_UNWIND_NO_MAPPING);
			return 1;
		}
		if (!m->nrows) {
			stat_inc(STAT_UNWIND_NO_TABLE);
		} else if (lookup_row(w->rcache, m, pc, &row)) {
			known = 1;
		} else {
			row.kind = UNW_NONE;
		}
	}
	v->have_last = 1;
	if (known) {
		__u32 k = v->memo_n;
		if (k < MEMO_FRAMES) {
			struct memo_frame *f = &w->next->f[k & (MEMO_FRAMES - 1)];
			f->pc = pc | (__u64)v->last_idx << 48;
			f->sp = sp32;
			f->kind = row.kind;
			f->rbp = row.rbp;
			f->cfa = row.cfa;
			v->memo_n = k + 1;
		}
	}
	__u8 kind = row.kind;
	if (kind == UNW_END) {
		v->done = 1;
		return 1;
	}

	/* Every rule comes down to: the caller's pc at ra_at, its rbp at bp_at
	 * (0: unchanged), its rsp either read at sp_at or, when that is 0, sp.
	 * One place reads them, which keeps the verifier's work small. */
	__u64 ra_at, bp_at = 0, sp_at = 0, sp;
	__u8 exact = 0, by_fp = 0;
	if (kind == UNW_SIGNAL) {
		ra_at = v->sp + UC_RBP + 8 * UC_RIP_WORD;
		bp_at = v->sp + UC_RBP;
		sp_at = v->sp + UC_RBP + 8 * UC_RSP_WORD;
		sp = 0;
		exact = 1; /* the interrupted instruction itself */
	} else if (kind == UNW_RSP || kind == UNW_RBP || kind == UNW_PLT) {
		if (kind == UNW_PLT)
			sp = v->sp + 8 + ((v->pc & 15) >= r->cfa ? 8 : 0);
		else
			sp = (kind == UNW_RSP ? v->sp : v->bp) + ((__u64)r->cfa << 3);
		ra_at = sp - 8;
		if (r->rbp)
			bp_at = sp + (__s64)r->rbp * 8;
	} else {
		/* No usable rule: one step by frame pointers, [bp] the caller's
		 * rbp and [bp+8] its pc. */
		if (kind == UNW_UNSUPPORTED)
			stat_inc(STAT_UNWIND_UNSUPPORTED);
		if (!v->bp)
			return 1;
		sp = v->bp + 16;
		ra_at = v->bp + 8;
		bp_at = v->bp;
		by_fp = 1;
	}
	/* The caller's frame is above this one: anything else is junk. */
	if (!sp_at && sp <= v->sp)
		return 1;
	__u64 ra, bp = v->bp;
	if (stack_word(w, ra_at, &ra))
		return 1;
	if (bp_at && stack_word(w, bp_at, &bp))
		return 1;
	if (sp_at && stack_word(w, sp_at, &sp))
		return 1;
	v->sp = sp;
	v->bp = bp;
	v->pc = ra;
	v->exact = exact;
	if (by_fp) {
		v->mark = FRAME_BY_FP;
		v->fell_back = 1;
	}
	return ra == 0;
}

/* The user stack of a process with unwind tables, leaf first, from the
 * registers of regs. Returns the words written at data[base]. */
static __always_inline __u32 unwind_user_stack(struct sample *s, struct unwind_proc *proc, __u32 base,
					       __u64 ip, __u64 sp, __u64 bp)
{
	__u32 zero = 0;
	struct unwind_walk w = { .s = s, .proc = proc };
	w.buf = bpf_map_lookup_elem(&py_scratch, &zero);
	w.rcache = bpf_map_lookup_elem(&row_cache, &zero);
	struct walk_memos *memos = bpf_map_lookup_elem(&walk_memo, &zero);
	if (!w.buf || !w.rcache || !memos)
		return 0;
	struct unwind_walk_vars *v = &w.buf->uw;
	__builtin_memset(v, 0, sizeof(*v));
	v->pc = ip;
	v->sp = sp;
	v->bp = bp;
	v->base = base;
	v->exact = 1;
	__u32 cur = memos->cur & 1;
	w.next = &memos->m[cur];
	w.prev = &memos->m[cur ^ 1];
	if (w.prev->pid == s->hdr.pid && w.prev->gen == proc->gen) {
		v->prev_n = w.prev->n;
		/* The leaf is most often in the previous leaf's mapping. */
		if (v->prev_n) {
			v->last_idx = (w.prev->f[0].pc >> 48) & (MAX_UNWIND_MAPS - 1);
			v->have_last = 1;
		}
	}
	bpf_loop(MAX_USTACK, unwind_step, &w, 0);
	w.next->pid = s->hdr.pid;
	w.next->gen = proc->gen;
	w.next->n = v->memo_n;
	memos->cur = cur ^ 1;
	s->hdr.flags |= FLAG_USTACK_TABLES;
	if (v->done)
		s->hdr.flags |= FLAG_USTACK_COMPLETE;
	if (v->need_maps)
		ask_user_space(s, &proc->last_refresh_ns, KIND_NEED_MAPS, STAT_NEED_MAPS_SENT, NEED_MAPS_NS);
	return v->n;
}
