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

#define UNWIND_MAP_STEPS 10	/* binary search over MAX_UNWIND_MAPS: log2 + 1 */
#define UNWIND_ROW_STEPS 25	/* binary search over up to 16M rows: log2 + 1 */
#define NEED_MAPS_NS (250 * 1000 * 1000ULL) /* at most 4 refresh requests a second */

/* Where the interrupted registers are in the ucontext a signal trampoline's
 * rsp points at (x86-64 kernel ABI: uc_mcontext.gregs at 40, REG_RBP = 10,
 * REG_RSP = 15, REG_RIP = 16). One 56-byte read covers rbp..rip. */
#define UC_RBP 120
#define UC_REGS_WORDS 7
#define UC_RSP_WORD 5
#define UC_RIP_WORD 6

/* The saved registers of one frame, read in one go (see unwind_step). */
#define SAVE_WORDS 16

struct unwind_scratch {
	__u64 w[SAVE_WORDS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_scratch);
} unwind_scratch SEC(".maps");

struct unwind_walk {
	struct sample *s;
	struct unwind_proc *proc;
	struct unwind_map *last;	/* the mapping of the previous frame: often the next one's too */
	struct unwind_scratch *buf;
	__u64 pc, sp, bp;
	__u64 mark;		/* FRAME_BY_FP when the current pc came from a fallback step */
	__u32 base;		/* first data[] word of the user stack */
	__u32 n;		/* words written */
	__u8 exact;		/* pc is where the thread is, not a return address */
	__u8 done;		/* reached the outermost frame */
	__u8 fell_back;		/* a fallback step happened: later addresses may be junk */
	__u8 need_maps;		/* pc was in no known mapping */
};

static __always_inline struct unwind_map *find_map(struct unwind_proc *p, __u64 pc)
{
	__u32 lo = 0, hi = p->n;
	if (hi == 0 || hi > MAX_UNWIND_MAPS)
		return 0;
	for (int i = 0; i < UNWIND_MAP_STEPS && hi - lo > 1; i++) {
		__u32 mid = lo + (hi - lo) / 2;
		/* verifier: the mask bounds the index into the value */
		if (p->maps[mid & (MAX_UNWIND_MAPS - 1)].start <= pc)
			lo = mid;
		else
			hi = mid;
	}
	struct unwind_map *m = &p->maps[lo & (MAX_UNWIND_MAPS - 1)];
	if (pc < m->start || pc >= m->end)
		return 0;
	return m;
}

/* The last row at or below pc in the mapping's run, or 0. */
static __always_inline struct unwind_row *find_row(struct unwind_map *m, __u64 pc)
{
	__u64 rel = pc - m->bias;
	if (rel > 0xffffffffULL)
		return 0;
	__u32 lo = m->rows, hi = m->rows + m->nrows;
	for (int i = 0; i < UNWIND_ROW_STEPS && hi - lo > 1; i++) {
		__u32 mid = lo + (hi - lo) / 2;
		struct unwind_row *r = bpf_map_lookup_elem(&unwind_rows, &mid);
		if (!r)
			return 0;
		if (r->pc <= (__u32)rel)
			lo = mid;
		else
			hi = mid;
	}
	struct unwind_row *r = bpf_map_lookup_elem(&unwind_rows, &lo);
	if (!r || r->pc > (__u32)rel)
		return 0;
	return r;
}

/* One step by frame pointers: [bp] is the caller's rbp, [bp+8] its pc. */
static __always_inline long fp_fallback(struct unwind_walk *w)
{
	__u64 frame[2];
	if (!w->bp || w->bp < w->sp || bpf_probe_read_user(frame, sizeof(frame), (void *)w->bp))
		return 1;
	w->sp = w->bp + 16;
	w->bp = frame[0];
	w->pc = frame[1];
	w->mark = FRAME_BY_FP;
	w->exact = 0;
	w->fell_back = 1;
	return w->pc == 0;
}

static long unwind_step(__u64 i, struct unwind_walk *w)
{
	__u64 idx = (__u64)w->base + w->n;
	if (idx >= MAX_KSTACK + MAX_USTACK) {
		stat_inc(STAT_UNWIND_TRUNCATED);
		return 1;
	}
	clamp_le(idx, MAX_KSTACK + MAX_USTACK - 1);
	w->s->data[idx] = w->pc | w->mark;
	w->n++;
	w->mark = 0;

	/* A return address is one past the call, which may be the first byte of
	 * the next function (calls to noreturn functions): look up the call. */
	__u64 pc = w->exact ? w->pc : w->pc - 1;
	struct unwind_map *m = w->last;
	if (!m || pc < m->start || pc >= m->end)
		m = find_map(w->proc, pc);
	w->last = m;
	if (!m) {
		if (!w->fell_back)
			w->need_maps = 1;
		stat_inc(STAT_UNWIND_NO_MAPPING);
		return 1;
	}
	struct unwind_row *r = 0;
	if (m->nrows)
		r = find_row(m, pc);
	else
		stat_inc(STAT_UNWIND_NO_TABLE);
	__u8 kind = r ? r->kind : UNW_NONE;

	if (kind == UNW_END) {
		w->done = 1;
		return 1;
	}
	if (kind == UNW_SIGNAL) {
		__u64 regs[UC_REGS_WORDS];
		if (bpf_probe_read_user(regs, sizeof(regs), (void *)(w->sp + UC_RBP)))
			return 1;
		w->bp = regs[0];
		w->sp = regs[UC_RSP_WORD];
		w->pc = regs[UC_RIP_WORD];
		w->exact = 1; /* the interrupted instruction itself */
		return w->pc == 0;
	}
	if (kind == UNW_RSP || kind == UNW_RBP || kind == UNW_PLT) {
		__u64 cfa;
		if (kind == UNW_PLT)
			cfa = w->sp + 8 + ((w->pc & 15) >= r->cfa ? 8 : 0);
		else
			cfa = (kind == UNW_RSP ? w->sp : w->bp) + ((__u64)r->cfa << 3);
		/* The caller's frame is above this one: anything else is junk. */
		if (cfa <= w->sp)
			return 1;
		__u64 ra, bp = w->bp;
		__s32 save = r->rbp;
		if (save < 0 && save >= -SAVE_WORDS) {
			/* rbp is pushed among the first registers: one read from its
			 * slot up to the return address gets both (a probe read costs
			 * far more than the bytes it copies) */
			__u64 size = (__u64)(-save) * 8;
			clamp_le(size, SAVE_WORDS * 8); /* verifier */
			if (size < 8 || bpf_probe_read_user(w->buf->w, size, (void *)(cfa - size)))
				return 1;
			bp = w->buf->w[0];
			ra = w->buf->w[((size >> 3) - 1) & (SAVE_WORDS - 1)];
		} else {
			if (bpf_probe_read_user(&ra, sizeof(ra), (void *)(cfa - 8)))
				return 1;
			if (save && bpf_probe_read_user(&bp, sizeof(bp), (void *)(cfa + (__s64)save * 8)))
				return 1;
		}
		w->sp = cfa;
		w->bp = bp;
		w->pc = ra;
		w->exact = 0;
		return ra == 0;
	}
	if (kind == UNW_UNSUPPORTED)
		stat_inc(STAT_UNWIND_UNSUPPORTED);
	return fp_fallback(w);
}

/* The user stack of a process with unwind tables, leaf first, from the
 * registers of regs. Returns the words written at data[base]. */
static __always_inline __u32 unwind_user_stack(struct sample *s, struct unwind_proc *proc, __u32 base,
					       __u64 ip, __u64 sp, __u64 bp)
{
	__u32 zero = 0;
	struct unwind_walk w = {
		.s = s, .proc = proc, .pc = ip, .sp = sp, .bp = bp, .base = base, .exact = 1,
	};
	w.buf = bpf_map_lookup_elem(&unwind_scratch, &zero);
	if (!w.buf)
		return 0;
	bpf_loop(MAX_USTACK, unwind_step, &w, 0);
	s->hdr.flags |= FLAG_USTACK_TABLES;
	if (w.done)
		s->hdr.flags |= FLAG_USTACK_COMPLETE;
	if (w.need_maps)
		ask_user_space(s, &proc->last_refresh_ns, KIND_NEED_MAPS, STAT_NEED_MAPS_SENT, NEED_MAPS_NS);
	return w.n;
}
