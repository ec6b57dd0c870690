/* The per-CPU buffer that reads of a target's memory land in: the Python
 * walker's window of frames (python.h) and the native walker's chunk of
 * stack (unwind.h); and the scalar state of the walk in progress. One buffer, not one each: the native walk runs first,
 * and the lines it brings into the cache are warm when the Python window is
 * read into them (a cold line cost ~50 ns a read here). */
#pragma once

#define PY_WINDOW 2048		/* bytes of frames read at once (3.11+); a power of two */

/* Frames as read from the target. 3.11+ keeps frames on its own stack of
 * contiguous chunks, a caller just below its callee, so one read of up to
 * PY_WINDOW bytes below a frame usually holds the next several frames too: a
 * probe read costs far more than the bytes it copies. Earlier versions'
 * frames are heap objects: one read a frame. Kept in a map value so variable
 * offsets into it are bounded by a mask. */
/* The Python walk's counters and addresses (python.h). verifier: kept in a
 * map value, not on the stack, so that the bpf_loop callback sees them as
 * unknown values and is checked once, not once per combination of values
 * the verifier could tell apart. */
struct py_walk_vars {
	struct py_offsets o;
	__u64 frame;	/* next frame to read; 0 at the root */
	__u64 win_lo;	/* target address of the window's first byte */
	__u32 win_len;	/* bytes in the window (0: empty) */
	__u32 base;	/* first data[] word for Python frames */
	__u32 n;	/* frames written */
	__u32 size;	/* bytes to read per frame */
	int err;
};

/* The native walk's counters and registers (unwind.h), for the same reason. */
struct unwind_walk_vars {
	__u64 pc, sp, bp;
	__u64 mark;		/* FRAME_BY_FP when the current pc came from a fallback step */
	__u64 chunk;		/* target address of the chunk in the buffer; 0: none */
	__u32 last_idx;		/* index in unwind_proc.maps of the previous frame's mapping */
	__u32 prev_n;		/* frames in the previous walk's memo; 0: none to use */
	__u32 mj;		/* the next entry of that memo to compare */
	__u32 memo_n;		/* entries written to this walk's memo */
	__u32 base;		/* first data[] word of the user stack */
	__u32 n;		/* words written */
	__u8 have_last;		/* last_idx is set: the next frame is often in the same mapping */
	__u8 exact;		/* pc is where the thread is, not a return address */
	__u8 done;		/* reached the outermost frame */
	__u8 fell_back;		/* a fallback step happened: later addresses may be junk */
	__u8 need_maps;		/* pc was in no known mapping */
};

struct py_scratch {
	union {
		__u64 words[PY_WINDOW / 8];
		__u8 bytes[PY_WINDOW];
	};
	struct py_walk_vars py;
	struct unwind_walk_vars uw;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_scratch);
} py_scratch SEC(".maps");
