/* Structures shared between the BPF programs and Go (bpf2go generates their Go
 * twins with -type). Keep every field naturally aligned: Go reads them raw. */
#pragma once

#define MAX_KSTACK 127	/* PERF_MAX_STACK_DEPTH: what bpf_get_stack can return */
#define MAX_USTACK 127
#define MAX_PYFRAMES 128
#define PYFRAME_WORDS 3 /* code, check, instr | PYFRAME_* << 32 */
/* The root-most Python frame that its C-level eval call runs (3.11+): where
 * the Python frames meet _PyEval_EvalFrameDefault on the native stack. */
#define PYFRAME_ENTRY (1ULL << 32)
/* The check bytes came from the code cache, not from the object itself: after
 * the address was reused they may be the old object's (python.h). */
#define PYFRAME_CACHED (1ULL << 33)
#define DATA_WORDS (MAX_KSTACK + MAX_USTACK + MAX_PYFRAMES * PYFRAME_WORDS)

/* verifier: clamp v to [0, max] in the very register the next access uses.
 * clang may test one copy of a value and index with another, and the verifier
 * only trusts bounds it saw on the register itself. */
#define clamp_le(v, max) asm volatile("if %0 <= %1 goto +1; %0 = %1" : "+r"(v) : "i"(max))

enum sample_kind {
	KIND_CPU = 1,		/* a cpu-clock tick on a target thread */
	KIND_OFFCPU = 2,	/* a stack a thread waited with (kept in wait_stacks, never sent) */
	KIND_NEED_THREADS = 3,	/* a Python target ran a thread with no known thread state */
	KIND_NEED_MAPS = 4,	/* a target ran code outside every mapping bprof knows of it */
	KIND_ALLOC = 5,		/* a sampled allocation (memory.h): addr, size, value = weight */
};

enum sample_flags {
	FLAG_PY_TRUNCATED = 1 << 0,	/* the Python stack was deeper than MAX_PYFRAMES */
	FLAG_PY_READ_ERR = 1 << 1,	/* a frame could not be read: the walk stopped there */
	FLAG_PY_UNKNOWN_THREAD = 1 << 2, /* a Python target, but this thread's state is unknown */
	FLAG_PY_TARGET = 1 << 3,	/* the process runs a known CPython */
	FLAG_KSTACK_ERR = 1 << 4,
	FLAG_USTACK_ERR = 1 << 5,
	FLAG_USTACK_COMPLETE = 1 << 6,	/* the native walk reached the outermost frame (_start, clone) */
	FLAG_USTACK_TABLES = 1 << 7,	/* the native walk used unwind tables (else frame pointers only) */
};

/* High bits of a user stack word: user addresses fit in 47 bits. */
#define FRAME_BY_FP (1ULL << 63)	/* found by frame-pointer fallback, not by an unwind table */
#define FRAME_ADDR_MASK ((1ULL << 56) - 1)

/* Counters in the stats map, one slot each. Go names them in sampler.Stats. */
enum stat_index {
	STAT_SAMPLES = 0,	/* samples taken on target threads */
	STAT_RING_FULL,		/* samples lost: the ring buffer was full */
	STAT_KSTACK_ERR,	/* kernel stack could not be read */
	STAT_USTACK_ERR,	/* user stack could not be read */
	STAT_PY_READ_ERR,	/* a Python frame could not be read */
	STAT_PY_TRUNCATED,	/* Python stack deeper than MAX_PYFRAMES */
	STAT_PY_UNKNOWN_THREAD,	/* Python thread with no thread state in py_threads */
	STAT_NEED_THREADS_SENT,	/* refresh requests sent to user space */
	STAT_OFFCPU_LOST,	/* off-CPU time that could not be recorded (maps full) */
	STAT_SWITCHES,		/* context switches of target threads seen */
	STAT_OFFCPU_NO_SLOT,	/* wait stacks not kept: wait_stacks refused the update */
	STAT_WAIT_CACHED,	/* switch-outs whose stack was already in wait_stacks */
	STAT_WAIT_CAPTURED,	/* switch-outs whose stack was walked and kept */
	STAT_WAIT_UNCAPTURED,	/* switch-outs with no stack: out of capture tokens */
	STAT_UNWIND_NO_TABLE,	/* native frames in a file whose table is not loaded (frame-pointer fallback) */
	STAT_UNWIND_NO_MAPPING,	/* native walks that reached an address outside every known mapping */
	STAT_UNWIND_UNSUPPORTED,	/* native frames with an unwind rule bprof cannot follow (fallback) */
	STAT_UNWIND_TRUNCATED,	/* native walks stopped by the frame limit */
	STAT_NEED_MAPS_SENT,	/* mapping refresh requests sent to user space */
	STAT_SWITCH_UNSEEN,	/* switches the tracepoint never showed, found and split by run time */
	STAT_ALLOCS,		/* sampled allocations of target processes seen (memory.h) */
	STAT_MEM_LOST,		/* of those, not delivered (ring buffer full, scratch busy) */
	STAT_SCRATCH_BUSY,	/* samples not taken: a preempted uprobe program held the CPU's scratch */
	STAT_WAIT_SPILLED,	/* waits summed in wait_totals: the thread's wait slots were all in use */
	STAT_MAX,
};

struct sample_hdr {
	__u64 ktime;		/* bpf_ktime_get_ns at the sample */
	__u64 value;		/* reserved */
	__u64 fsbase;		/* the thread pointer, = pthread_self() = PyThreadState.thread_id */
	__u32 pid;		/* tgid, host PID namespace */
	__u32 tid;
	__u32 cpu;
	__u32 kind;		/* enum sample_kind */
	__u16 kstack_len;	/* words of data[] holding kernel addresses */
	__u16 ustack_len;	/* words after those holding user addresses */
	__u16 py_len;		/* Python frames after those, PYFRAME_WORDS words each */
	__u16 flags;		/* enum sample_flags */
	__u32 state;		/* KIND_OFFCPU: 0 = sleep, 1 = runqueue (preempted); KIND_ALLOC: probe flags */
	__u32 _pad;
	char comm[16];
	__u64 addr;		/* KIND_ALLOC: the block's address */
	__u64 size;		/* KIND_ALLOC: its size in bytes (value: the bytes it stands for) */
};

struct sample {
	struct sample_hdr hdr;
	__u64 data[DATA_WORDS];
};

/* Where to find things in one CPython version's structures: filled from
 * pkg/python's table by user space, one entry per target process. A negative
 * offset means "not in this version". */
struct py_offsets {
	__s16 tstate_frame;	/* <=3.10 tstate->frame, 3.11/3.12 tstate->cframe, 3.13+ tstate->current_frame */
	__s16 cframe_current;	/* 3.11/3.12: cframe->current_frame; else -1 */
	__s16 frame_code;	/* f_code / f_executable */
	__s16 frame_previous;	/* f_back / previous */
	__s16 frame_instr;	/* f_lasti (int) or prev_instr / instr_ptr (pointer) */
	__s16 frame_owner;	/* 3.11+: owner (char); else -1 */
	__s16 code_adaptive;	/* 3.11+: co_code_adaptive; else -1 */
	__s16 code_check;	/* 8 bytes of the code object that identify it (co_firstlineno, ...) */
	__s16 frame_is_entry;	/* 3.11: is_entry (bool); else -1 */
	__u16 frame_size;	/* bytes to read per frame: covers every frame_* field */
	__u8 instr_is_ptr;	/* 1: frame_instr is a pointer into the bytecode */
	__u8 code_tag_mask;	/* low bits to clear from the code pointer (3.14 stack refs) */
	__u8 skip_owner;	/* frames with owner >= this are entry shims to skip (3.12+: 3); 0xff none */
	__u8 _pad[1];
};

struct py_thread_key {
	__u32 pid;
	__u32 _pad;
	__u64 fsbase;
};

struct py_proc {
	struct py_offsets off;
	__u64 last_refresh_ns;	/* rate limit for KIND_NEED_THREADS */
};

/* Waits of one thread at one (site, state) in one period, summed in the
 * thread's own entry (offcpu.h, wait_add). */
#define WAIT_SLOTS 4
struct wait_slot {
	__u64 site;
	__u64 epoch;		/* the start of the period it sums (offcpu_epoch) */
	__u64 ns;
	__u32 count;
	__u32 state;
};

/* Off-CPU bookkeeping per thread (sched_switch, offcpu.h). */
struct offcpu_state {
	__u64 start;		/* ktime when it left the CPU; 0 while it runs */
	__u64 oncpu_since;	/* ktime when it got the CPU; 0 while off it or unknown */
	__u64 oncpu_ns;		/* time on the CPU, summed: only ever grows (user space diffs) */
	__u64 last_refill;	/* ktime of the last token refill (see offcpu.h) */
	__u64 site;		/* where the open wait waits: enum wait_site or a key of wait_stacks */
	__u32 pid;		/* tgid */
	__u32 state;		/* 0 sleep, 1 runqueue (preempted or yielded) */
	__u32 tokens;		/* stack captures it may make now */
	__u32 dead;		/* it exited: user space drops the entry after its last read */
	__u64 runtime;		/* its se.sum_exec_runtime at the last switch seen */
	__u64 kept_site;	/* a site of this thread found in wait_stacks at kept_at */
	__u64 kept_at;		/* ktime of that lookup (see switch_out) */
	/* What wait_site knows of the thread's interpreter, looked up at py_at. */
	__u64 py_tstate;	/* its PyThreadState; 0: not a Python thread, or not known yet */
	__u64 py_at;
	struct py_offsets py_off;
	/* Its last full fingerprint (wait_site), made at fp_at. */
	__u64 fp_native;	/* of the native part */
	__u64 fp_site;
	__u64 fp_at;
	struct wait_slot slots[WAIT_SLOTS];
};

/* Where a wait's stack is: a key of wait_stacks (a fingerprint, never below
 * SITE_FIRST), or one of these. */
enum wait_site {
	SITE_UNCAPTURED = 0,	/* no stack: out of capture tokens, or wait_stacks was full */
	SITE_AT_ADD = 1,	/* blocked when its process was added: user space's snapshot */
	SITE_FIRST = 2,
};

/* Off-CPU time summed per thread, state and stack (wait_totals). */
struct wait_key {
	__u32 tid;
	__u32 state;		/* 0 sleep, 1 runqueue */
	__u64 site;		/* enum wait_site or a key of wait_stacks */
	__u64 epoch;		/* the start of the period it sums (offcpu_epoch) */
};

struct wait_total {
	__u64 ns;
	__u64 count;
	__u32 pid;
	__u32 _pad;
};

/* Native unwinding (unwind.h). One row of a file's table, built by pkg/unwind
 * from .eh_frame: from pc up to the next row's pc, the caller's frame is found
 * by this rule. 8 bytes, so a 2M-row table is 16 MiB. */
enum unwind_kind {
	UNW_NONE = 0,		/* no unwind information here */
	UNW_RSP = 1,		/* CFA = rsp + 8*cfa */
	UNW_RBP = 2,		/* CFA = rbp + 8*cfa */
	UNW_PLT = 3,		/* PLT stub: CFA = rsp + 8, + 8 when (rip & 15) >= cfa */
	UNW_SIGNAL = 4,		/* signal trampoline: registers in the ucontext at rsp */
	UNW_END = 5,		/* outermost frame: the return address is undefined */
	UNW_UNSUPPORTED = 6,	/* a rule the kernel side cannot follow */
};

struct unwind_row {
	__u32 pc;	/* table-relative address (runtime pc - unwind_map.bias) */
	__u8 kind;	/* enum unwind_kind */
	__s8 rbp;	/* caller's rbp saved at CFA + 8*rbp; 0 = rbp unchanged */
	__u16 cfa;	/* CFA offset in 8-byte units (UNW_PLT: the threshold) */
};

#define MAX_UNWIND_MAPS 512	/* executable mappings per process; a power of two */

/* One executable mapping of a process and its file's rows in unwind_rows.
 * Right before the rows, pages + 1 slots of unwind_rows index them by 4 KiB
 * page of table pc: the pc field of slot i holds how many rows start below
 * page first_page + i, so the binary search for a pc in page p need only
 * look between slots p and p + 1 (a few dozen rows, a few cache lines)
 * instead of over the whole table. */
#define UNWIND_PAGE_SHIFT 12

struct unwind_map {
	__u64 start;	/* [start, end) in the process */
	__u64 end;
	__u64 bias;	/* runtime pc - bias = the pc the table's rows use */
	__u32 rows;	/* first row in unwind_rows */
	__u32 nrows;	/* 0: no table (not loaded yet, JIT, no .eh_frame): frame pointers */
	__u32 pages;	/* pages the index covers; 0: no index */
	__u32 first_page;	/* table pc >> UNWIND_PAGE_SHIFT of the index's first slot */
};

struct unwind_proc {
	__u32 n;	/* mappings used, sorted by start */
	__u32 gen;	/* changes whenever the mappings do: unwind.h's walk memo is of one generation */
	__u64 last_refresh_ns;	/* rate limit for KIND_NEED_MAPS */
	struct unwind_map maps[MAX_UNWIND_MAPS];
};
