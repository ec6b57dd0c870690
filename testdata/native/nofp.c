/* A C program for the native-unwinding test, built at test time with
 * gcc -O2 -fomit-frame-pointer: main -> outer -> middle -> inner, with the
 * time in inner and in libc's memset/memcpy below it. Without frame
 * pointers only unwind tables (.eh_frame) lead from inner back to main.
 * It prints "ready", waits for a line on stdin and runs for argv[1] seconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char buf[2][1 << 16];
volatile unsigned long sink;

__attribute__((noinline)) static unsigned long inner(int round)
{
	/* A frame of locals and calls into libc, so the CFA moves. */
	volatile char local[256];
	memset((void *)local, round, sizeof(local));
	memset(buf[0], round, sizeof(buf[0]));
	memcpy(buf[1], buf[0], sizeof(buf[1]));
	unsigned long h = 0;
	for (int i = 0; i < (int)sizeof(buf[1]); i += 64)
		h = h * 31 + buf[1][i] + local[i & 255];
	return h;
}

__attribute__((noinline)) static unsigned long middle(int round)
{
	unsigned long h = inner(round);
	sink += h;
	return h ^ (unsigned long)round;
}

__attribute__((noinline)) static unsigned long outer(int round)
{
	unsigned long h = middle(round);
	sink ^= h;
	return h + 1;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 10;
	struct timespec t0, t;
	printf("ready\n");
	fflush(stdout);
	getchar(); /* "go": the profiler is sampling; the timed work starts now */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int round = 0;; round++) {
		sink += outer(round);
		if ((round & 255) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec - t0.tv_sec + (t.tv_nsec - t0.tv_nsec) / 1e9 > secs)
				break;
		}
	}
	return 0;
}
