/* Two threads passing a byte back and forth through pipes: a workload that
 * context-switches as fast as the machine allows, for the off-CPU benchmarks.
 * Usage: pingpong ROUNDS [SPIN [DELAY_MS]]
 *   SPIN: busy-loop iterations per message, to bring the switch rate down
 *   DELAY_MS: wait before starting, so a profiler can attach
 * Prints the elapsed seconds of the rounds and the switches per second.
 * Build: gcc -O2 -pthread -o pingpong pingpong.c */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int ping[2], pong[2];
static long rounds, spin;
static volatile long sink;

static void work(void)
{
	for (long k = 0; k < spin; k++)
		sink += k;
}

static void *echo(void *arg)
{
	(void)arg;
	char c;
	for (long i = 0; i < rounds; i++) {
		if (read(ping[0], &c, 1) != 1)
			exit(1);
		work();
		if (write(pong[1], &c, 1) != 1)
			exit(1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	rounds = argc > 1 ? atol(argv[1]) : 100000;
	spin = argc > 2 ? atol(argv[2]) : 0;
	if (argc > 3)
		usleep(atol(argv[3]) * 1000);
	if (pipe(ping) || pipe(pong))
		return 1;
	pthread_t t;
	pthread_create(&t, NULL, echo, NULL);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	char c = 'x';
	for (long i = 0; i < rounds; i++) {
		work();
		if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1)
			return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	pthread_join(t, NULL);
	double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("%.6f %.0f\n", s, 2.0 * rounds / s);
	return 0;
}
