/* A native workload with a known CPU split, for bprof's tests.
 * Built at test time: gcc -O1 -fno-omit-frame-pointer -o split split.c
 *
 * main loops over alpha (2 ms of thread CPU time), beta (1 ms) and
 * sys_heavy (1 ms spent mostly in the kernel, in getppid). Each function
 * measures its own thread CPU time, so the split holds on CPUs of any speed:
 * alpha : beta : sys_heavy = 2 : 1 : 1. */
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static uint64_t thread_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

volatile uint64_t sink;

__attribute__((noinline)) void spin(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		sink += i * i;
}

/* Burn ns of CPU time in chunks small enough that the clock reads are rare. */
#define BURN(ns) do { uint64_t end = thread_ns() + (ns); \
	while (thread_ns() < end) { for (int k = 0; k < 20000; k++) sink += k * k; } } while (0)

__attribute__((noinline)) void alpha(void) { BURN(2000000); }
__attribute__((noinline)) void beta(void) { BURN(1000000); }

/* The syscall instruction is issued here, not in libc: libc has no frame
 * pointers, so a frame-pointer unwind from inside libc's wrapper would skip
 * its caller. */
static inline long raw_getppid(void)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(SYS_getppid) : "rcx", "r11", "memory");
	return ret;
}

__attribute__((noinline)) void sys_heavy(void)
{
	uint64_t end = thread_ns() + 1000000;
	while (thread_ns() < end)
		for (int k = 0; k < 50; k++)
			sink += raw_getppid();
}

int main(int argc, char **argv)
{
	(void)argv;
	for (;;) {
		alpha();
		beta();
		if (argc < 2)
			sys_heavy();
	}
}
