/* The per-CPU buffer that reads of a target's memory land in: the Python
 * walker's window of frames (python.h) and the native walker's chunk of
 * stack (unwind.h). One buffer, not one each: the native walk runs first,
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
struct py_scratch {
	union {
		__u64 words[PY_WINDOW / 8];
		__u8 bytes[PY_WINDOW];
	};
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_scratch);
} py_scratch SEC(".maps");
