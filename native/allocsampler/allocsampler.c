/* bprof's allocation sampler: a tiny shared library loaded into a CPython
 * process (by bprof_client with ctypes, or by bprof itself through PEP 768
 * remote execution on 3.14+). It decides inside the target which allocations
 * to sample, because a uprobe on every allocation costs ~15 µs a hit here
 * (~300x slowdown); only sampled allocations reach the kernel, through a
 * probe function bprof attaches a uprobe to. Frees of sampled blocks take
 * them out of a set in this process's memory, which bprof copies when it
 * needs the live heap: a second probe for them cost a trap each (2-4 µs).
 * See docs/ARCHITECTURE.md ("Memory profiles").
 *
 * Hooks: the object and mem domains (PyObject_Malloc, PyMem_Malloc), wrapped
 * with PyMem_GetAllocator/PyMem_SetAllocator, passing through to the
 * allocator that was there before. They are never unhooked, as someone else
 * (tracemalloc, ddtrace) may have chained after us: disabling makes the
 * allocation path pass-through.
 *
 * Sampling: a byte countdown whose next sample point is drawn from an
 * exponential distribution with mean ctl.mean (Poisson process over bytes, as
 * tcmalloc, Go and ddtrace do). An allocation of s bytes is then sampled with
 * probability p = 1 - exp(-s/mean), independently of what came before, and
 * weighted s/p bytes (1/p objects): an unbiased estimate per allocation (Go's
 * scaling, runtime/pprof/protomem.go). Weighting by "bytes since the last
 * sample" instead would credit a large allocation with the small ones before
 * it. The unsampled fast path is a subtraction and a branch before a tail
 * call to the previous allocator.
 *
 * Heap live: sampled pointers are kept in an open-addressing hash set (linear
 * probing, tombstones, grown by mmap), fronted by a 16 KiB
 * counting filter. A free checks nothing while the set is empty, and only the
 * filter (one byte, in cache) for almost every other pointer. A header in
 * front of sampled blocks (ddtrace's way) would make free as cheap, but it has
 * to look at memory before *every* freed block, and it changes the blocks'
 * sizes and alignment under the previous allocator's feet (realloc, debug
 * hooks); the set changes nothing in the blocks. bprof finds the set through
 * the control block and copies it with process_vm_readv (see the tombstones
 * below for why a copy needs no lock).
 *
 * Thread safety: CPython calls the object and mem domains with the GIL held
 * (documented since 3.6), so one thread at a time runs these hooks and the
 * plain globals below need no atomics. Free-threaded builds (3.13t, 3.14t)
 * call them without a GIL: they are not supported (the loader refuses them),
 * nor are sub-interpreters with their own GIL that allocate concurrently.
 * bprof writes ctl.enabled and ctl.mean from outside the process (aligned
 * stores, read once per allocation or per sample).
 *
 * fork(): the child inherits the hooks, the set and the countdown; nothing
 * here holds a lock, so it keeps working. Its uprobes are bprof's business
 * (they filter on the PID).
 *
 * No libc, no locks: the library has no undefined symbols and needs no
 * loader but the system's (glibc or musl); the two allocator functions come
 * from the caller. Nothing here can block or deadlock (a child forked while
 * another thread was inside a hook is fine), and the probe function is a
 * push, a pop and a return. The hooks are not async-signal-safe, nor need to be:
 * CPython never allocates from these domains in a C signal handler.
 * x86-64 only (raw system calls, the probe sites). */

#include <stddef.h>
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))
#define NOINLINE __attribute__((noinline))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* CPython's PyMemAllocatorEx, stable since 3.5. */
typedef struct {
	void *ctx;
	void *(*malloc)(void *ctx, size_t size);
	void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
	void *(*realloc)(void *ctx, void *ptr, size_t new_size);
	void (*free)(void *ctx, void *ptr);
} PyMemAllocatorEx;

enum { PYMEM_DOMAIN_RAW = 0, PYMEM_DOMAIN_MEM = 1, PYMEM_DOMAIN_OBJ = 2 };

typedef void (*get_allocator_fn)(int domain, PyMemAllocatorEx *allocator);
typedef void (*set_allocator_fn)(int domain, PyMemAllocatorEx *allocator);

/* The control block bprof finds by its dynamic symbol and reads or writes
 * with process_vm_readv/writev (pkg/memory). Append only; bump abi when a
 * field changes meaning. */
struct bprof_alloc_ctl {
	uint32_t magic;		/* CTL_MAGIC */
	uint32_t abi;		/* CTL_ABI */
	volatile uint32_t enabled;	/* sample new allocations (frees are always tracked) */
	uint32_t domains;	/* bit per hooked domain (1 << PYMEM_DOMAIN_*) */
	volatile uint64_t mean;	/* mean bytes between samples */
	uint64_t sampled;	/* allocations sampled since load (alloc probe calls) */
	uint64_t freed;		/* frees of tracked pointers */
	uint64_t live;		/* tracked pointers now */
	uint64_t untracked;	/* sampled but not tracked: the set could not grow */
	/* ABI 2: the table of tracked pointers, which bprof copies to learn
	 * which sampled blocks are still live: its address (page-aligned) ORed
	 * with log2 of its slots, 0 before the first. A slot holds a pointer,
	 * 0 (empty) or 1 (removed). */
	volatile uint64_t set;
};

#define CTL_MAGIC 0x53415042u	/* "BPAS" */
#define CTL_ABI 2
#define DEFAULT_MEAN (512 * 1024)

/* Bits of the probe's flags argument. */
#define PROBE_TRACKED 1	/* the pointer is in the set until it is freed */

/* The code uses ctl, a hidden symbol, so the hot path reaches it directly;
 * bprof finds it by the exported alias. */
static struct bprof_alloc_ctl ctl = {
	.magic = CTL_MAGIC,
	.abi = CTL_ABI,
	.mean = DEFAULT_MEAN,
};
extern struct bprof_alloc_ctl bprof_alloc_ctl __attribute__((alias("ctl"), visibility("default")));

/* The probe site: bprof attaches a uprobe at its first instruction, where
 * the arguments are still in rdi, rsi, rdx, rcx. That instruction is a push
 * of rbp, which the kernel emulates on the trap: measured here (6.18, a
 * bpftrace counting probe, pinned), a hit costs ~1.6 µs on a push, ~3 µs on
 * a one-byte nop, and 16-30 µs on a nop5 or a mov, which are stepped out of
 * line (optimized uprobes, which would turn a nop5 into a call, do not take
 * here). At the default rate the trap comes ~1 ms after the last one and
 * costs 4-7 µs cold (docs/BENCHMARKS.md, memory profiles). Out of line
 * assembly, so no compiler can inline it away or move the arguments. */
EXPORT void bprof_alloc_probe(void *ptr, uint64_t size, uint64_t weight, uint64_t flags);
__asm__(
	".text\n"
	".globl bprof_alloc_probe\n"
	".type bprof_alloc_probe, @function\n"
	".p2align 4\n"
	"bprof_alloc_probe:\n"
	".cfi_startproc\n"
	"push %rbp\n"
	".cfi_adjust_cfa_offset 8\n"
	"pop %rbp\n"
	".cfi_adjust_cfa_offset -8\n"
	"ret\n"
	".cfi_endproc\n"
	".size bprof_alloc_probe, .-bprof_alloc_probe\n");

/* ---- system calls (x86-64), no libc ---- */

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

static void *map_zeroed(size_t len)
{
	/* mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) */
	long r = sys6(9, 0, (long)len, 3, 0x22, -1, 0);
	if ((unsigned long)r > -4096UL)
		return 0;
	return (void *)r;
}

static void unmap(void *p, size_t len)
{
	sys6(11, (long)p, (long)len, 0, 0, 0, 0);
}

/* ---- random numbers and the two functions the weights need ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	/* xorshift64* */
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Natural log of x in (0, 1]: x = m * 2^e with m in [1, 2), then
 * ln m = 2 atanh(z), z = (m-1)/(m+1) <= 1/3, by its series (error < 1e-11). */
static double ln01(double x)
{
	union { double d; uint64_t u; } v = { .d = x };
	int e = (int)((v.u >> 52) & 0x7ff) - 1023;
	v.u = (v.u & ((1ULL << 52) - 1)) | (1023ULL << 52);
	double m = v.d;
	double z = (m - 1) / (m + 1), z2 = z * z, t = z, s = 0;
	for (int k = 1; k < 24; k += 2) {
		s += t / k;
		t *= z2;
	}
	return e * 0.69314718055994530942 + 2 * s;
}

/* 1 - exp(-x) for x >= 0, with full relative precision for small x. */
static double one_minus_exp_neg(double x)
{
	if (x > 40)
		return 1;
	if (x < 0.01)
		return x * (1 - x / 2 * (1 - x / 3 * (1 - x / 4 * (1 - x / 5))));
	/* exp(-x) = 2^-k exp(-r), r = x - k ln 2 in [0, ln 2) */
	int k = (int)(x / 0.69314718055994530942);
	double r = x - k * 0.69314718055994530942;
	double term = 1, sum = 1;
	for (int i = 1; i < 20; i++) {
		term *= -r / i;
		sum += term;
	}
	union { double d; uint64_t u; } scale = { .u = (uint64_t)(1023 - k) << 52 };
	return 1 - sum * scale.d;
}

/* Bytes to the next sample point: exponential with mean `mean`. */
static int64_t draw(uint64_t mean)
{
	/* u in (0, 1]: 53 random bits, never 0 */
	double u = (double)((rng_next() >> 11) + 1) * (1.0 / 9007199254740992.0);
	double d = -ln01(u) * (double)mean;
	if (d > 9e18)
		d = 9e18;
	return (int64_t)d + 1;
}

/* ---- the set of sampled pointers ---- */

#define FILTER_SIZE (16 * 1024)	/* counting filter: one byte per bucket */
#define SET_MIN (4096)		/* slots; a power of two */
#define TOMB ((uintptr_t)1)	/* a removed entry: never a block's address */

static uint8_t filter[FILTER_SIZE];
static uintptr_t *set;		/* 0 = empty slot, TOMB = removed */
static uint64_t set_mask;	/* slots - 1 */
static uint64_t tombs;		/* TOMB slots */

/* bprof copies the table from outside while this thread changes it, with no
 * lock between them. So an entry never moves: a removal leaves a tombstone
 * in its slot (backward-shift deletion would move later entries, and a copy
 * made during the move could miss one), and a table is rebuilt into a new
 * mapping, published with one aligned store, before the old one is unmapped.
 * A copy of either table, however torn, then holds every block that stayed
 * live while it was made; at worst it still holds a block freed meanwhile,
 * which the next copy drops. */

static inline uint64_t hash_ptr(uintptr_t p)
{
	return (uint64_t)(p >> 4) * 0x9E3779B97F4A7C15ULL;
}

static inline uint32_t filter_slot(uint64_t h) { return (uint32_t)(h >> 50) & (FILTER_SIZE - 1); }

/* Returns 0 if p was already there. The first tombstone on the way takes p. */
static int set_put(uintptr_t *tab, uint64_t mask, uintptr_t p)
{
	uint64_t i = (hash_ptr(p) >> 20) & mask;
	uintptr_t *tomb = 0;
	while (tab[i]) {
		if (tab[i] == p)
			return 0;
		if (tab[i] == TOMB && !tomb)
			tomb = &tab[i];
		i = (i + 1) & mask;
	}
	if (tomb) {
		*tomb = p;
		tombs--;
	} else {
		tab[i] = p;
	}
	return 1;
}

static unsigned log2u(uint64_t n)
{
	unsigned k = 0;
	while (n >>= 1)
		k++;
	return k;
}

/* Make room for one more pointer: live entries and tombstones together fill
 * at most half the table, so every probe ends at an empty slot. A rebuild
 * drops the tombstones and leaves the table at most a quarter full. Returns
 * 0 when no memory could be had. */
static int set_reserve(void)
{
	uint64_t slots = set ? set_mask + 1 : 0;
	if (set && (ctl.live + tombs + 1) * 2 <= slots)
		return 1;
	uint64_t n = slots ? slots : SET_MIN;
	while ((ctl.live + 1) * 4 > n)
		n *= 2;
	uintptr_t *tab = map_zeroed(n * sizeof(uintptr_t));
	if (!tab)
		return 0;
	for (uint64_t i = 0; i < slots; i++)
		if (set[i] > TOMB)
			set_put(tab, n - 1, set[i]);
	uintptr_t *old = set;
	set = tab;
	set_mask = n - 1;
	tombs = 0;
	/* Published before the old table goes: a copy of the old one made
	 * until then is still whole. Mappings are page-aligned, so the low
	 * bits carry log2 of the slots, and one store says both. */
	__asm__ volatile("" ::: "memory");
	ctl.set = (uintptr_t)tab | log2u(n);
	__asm__ volatile("" ::: "memory");
	if (old)
		unmap(old, slots * sizeof(uintptr_t));
	return 1;
}

static int track(uintptr_t p)
{
	if (!set_reserve())
		return 0;
	if (!set_put(set, set_mask, p))
		return 1; /* cannot happen: a tracked pointer is live */
	uint8_t *c = &filter[filter_slot(hash_ptr(p))];
	if (*c != 255)
		(*c)++;
	ctl.live++;
	return 1;
}

/* Remove p if it is tracked; returns whether it was. */
static NOINLINE int untrack(uintptr_t p)
{
	uint64_t h = hash_ptr(p);
	uint64_t mask = set_mask, i = (h >> 20) & mask;
	while (set[i] != p) {
		if (!set[i])
			return 0;
		i = (i + 1) & mask;
	}
	set[i] = TOMB;
	tombs++;
	uint8_t *c = &filter[filter_slot(h)];
	if (*c != 255) /* a saturated bucket stays "maybe" for good */
		(*c)--;
	ctl.live--;
	return 1;
}

static inline int maybe_tracked(uintptr_t p)
{
	return ctl.live && p && filter[filter_slot(hash_ptr(p))];
}

/* ---- the hooks ---- */

struct domain {
	PyMemAllocatorEx prev;
};

static struct domain domains[3];
static int64_t countdown;

/* The slow path: p (size bytes) was sampled. */
static NOINLINE void sample(void *p, uint64_t size)
{
	uint64_t mean = ctl.mean;
	if (mean == 0)
		mean = DEFAULT_MEAN;
	countdown = draw(mean);
	double prob = one_minus_exp_neg((double)size / (double)mean);
	double w = (double)size / prob;
	uint64_t weight = w < 1 ? 1 : (uint64_t)(w + 0.5);
	uint64_t flags = track((uintptr_t)p) ? PROBE_TRACKED : 0;
	if (!flags)
		ctl.untracked++;
	ctl.sampled++;
	bprof_alloc_probe(p, size, weight, flags);
}

/* Counts size bytes towards the next sample point; true once it is reached.
 * The count runs whether sampling is on or not, so the fast path has no
 * other test; a point reached while sampling is off is drawn again. */
static inline int due(uint64_t size)
{
	return UNLIKELY((countdown -= (int64_t)size) <= 0);
}

/* p, the new block of size bytes, reached the sample point. A failed
 * allocation leaves the point reached, for the next one to take. */
static NOINLINE void reached(void *p, uint64_t size)
{
	if (!ctl.enabled) {
		countdown = draw(ctl.mean ? ctl.mean : DEFAULT_MEAN);
		return;
	}
	if (p)
		sample(p, size);
}

static NOINLINE void forget(void *p)
{
	if (untrack((uintptr_t)p))
		ctl.freed++;
}

/* Every hook ends in a tail call to the previous allocator on its fast path:
 * a hook that waits for the block to come back pays a stack frame on every
 * allocation, which measured ~2 % of an allocation-heavy workload here, four
 * times the cost of the pass-through alone. So the count comes first, and
 * only an allocation that reaches the sample point waits for its block. */

static NOINLINE void *malloc_sampled(struct domain *d, size_t size)
{
	void *p = d->prev.malloc(d->prev.ctx, size);
	reached(p, size);
	return p;
}

static void *hook_malloc(void *ctx, size_t size)
{
	struct domain *d = ctx;
	if (due(size))
		return malloc_sampled(d, size);
	return d->prev.malloc(d->prev.ctx, size);
}

static NOINLINE void *calloc_sampled(struct domain *d, size_t nelem, size_t elsize, uint64_t size)
{
	void *p = d->prev.calloc(d->prev.ctx, nelem, elsize);
	reached(p, size);
	return p;
}

static void *hook_calloc(void *ctx, size_t nelem, size_t elsize)
{
	struct domain *d = ctx;
	uint64_t size;
	if (__builtin_mul_overflow(nelem, elsize, &size))
		size = 0; /* the allocation fails: nothing to count */
	if (due(size))
		return calloc_sampled(d, nelem, elsize, size);
	return d->prev.calloc(d->prev.ctx, nelem, elsize);
}

/* A realloc is the free of the old block and the allocation of the new one,
 * at its full size, as in tcmalloc and Go. */
static NOINLINE void *realloc_slow(struct domain *d, void *ptr, size_t size, int sample_due)
{
	void *p = d->prev.realloc(d->prev.ctx, ptr, size);
	if (p || size == 0) {
		if (ptr && maybe_tracked((uintptr_t)ptr))
			forget(ptr);
		if (sample_due)
			reached(p, size);
	}
	return p;
}

static void *hook_realloc(void *ctx, void *ptr, size_t size)
{
	struct domain *d = ctx;
	int sample_due = due(size);
	if (UNLIKELY(sample_due || maybe_tracked((uintptr_t)ptr)))
		return realloc_slow(d, ptr, size, sample_due);
	return d->prev.realloc(d->prev.ctx, ptr, size);
}

static void hook_free(void *ctx, void *ptr)
{
	struct domain *d = ctx;
	if (maybe_tracked((uintptr_t)ptr))
		forget(ptr);
	d->prev.free(d->prev.ctx, ptr);
}

/* ---- entry points, called through ctypes.PyDLL (the GIL held) ---- */

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* Hook the domains in the mask (1 << PYMEM_DOMAIN_MEM | 1 << PYMEM_DOMAIN_OBJ),
 * sampling off until enabled. get and set are PyMem_GetAllocator and
 * PyMem_SetAllocator. Returns the domains hooked (by this call or before). */
EXPORT uint32_t bprof_alloc_install(void *get, void *set, uint32_t mask)
{
	if (!rng_state) {
		rng_state = rdtsc() ^ (uint64_t)(uintptr_t)&rng_state;
		if (!rng_state)
			rng_state = 1;
		countdown = draw(ctl.mean ? ctl.mean : DEFAULT_MEAN);
	}
	mask &= (1u << PYMEM_DOMAIN_MEM) | (1u << PYMEM_DOMAIN_OBJ);
	for (int dom = PYMEM_DOMAIN_MEM; dom <= PYMEM_DOMAIN_OBJ; dom++) {
		if (!(mask & (1u << dom)) || (ctl.domains & (1u << dom)))
			continue;
		((get_allocator_fn)get)(dom, &domains[dom].prev);
		PyMemAllocatorEx hook = {
			.ctx = &domains[dom],
			.malloc = hook_malloc,
			.calloc = hook_calloc,
			.realloc = hook_realloc,
			.free = hook_free,
		};
		((set_allocator_fn)set)(dom, &hook);
		ctl.domains |= 1u << dom;
	}
	return ctl.domains;
}

/* Start sampling with mean bytes between samples (0: keep the current mean). */
EXPORT void bprof_alloc_enable(uint64_t mean)
{
	if (mean)
		ctl.mean = mean;
	ctl.enabled = 1;
}

/* Stop sampling: allocations pass through. Frees of pointers sampled before
 * still leave the set, so a later start sees a consistent one. */
EXPORT void bprof_alloc_disable(void)
{
	ctl.enabled = 0;
}
