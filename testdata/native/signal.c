/* A C program for the signal-frame test, built at test time with gcc -O2
 * -fomit-frame-pointer: main_work spins, and a SIGALRM handler that fires
 * every 10 ms spins in handler_work for ~5 ms. A stack sampled in the
 * handler goes through the kernel's signal frame (glibc's __restore_rt) back
 * into main_work, main and _start. Prints "ready", waits for a line on stdin, runs argv[1] seconds. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

volatile unsigned long sink;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

__attribute__((noinline)) static void handler_work(void)
{
	double end = now() + 0.005;
	while (now() < end)
		for (int i = 0; i < 1000; i++)
			sink += i;
}

__attribute__((noinline)) static void on_alarm(int sig)
{
	handler_work();
	sink += sig;
}

__attribute__((noinline)) static void main_work(double end)
{
	while (now() < end)
		for (int i = 0; i < 1000; i++)
			sink ^= i;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 10;
	struct sigaction sa = { .sa_handler = on_alarm };
	sigaction(SIGALRM, &sa, NULL);
	printf("ready\n");
	fflush(stdout);
	getchar(); /* "go": the profiler is sampling; the timed work starts now */
	/* After the read: SIGALRM would interrupt it. */
	struct itimerval it = { .it_interval = { 0, 10000 }, .it_value = { 0, 10000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	main_work(now() + secs);
	return 0;
}
