/* A C program for bprof dump's native walk, built at test time with
 * gcc -O2 -fomit-frame-pointer: main -> outer -> middle, which prints
 * "ready" and blocks reading its standard input. Without frame pointers
 * only unwind tables (.eh_frame) lead from read back to main. */
#include <stdio.h>
#include <unistd.h>

volatile int sink;

__attribute__((noinline)) static int middle(int n)
{
	char buf[64];
	volatile char pad[128]; /* a frame of its own size, so the CFA moves */
	pad[0] = (char)n;
	printf("ready\n");
	fflush(stdout);
	return (int)read(0, buf, sizeof(buf)) + pad[0];
}

__attribute__((noinline)) static int outer(int n)
{
	int r = middle(n + 1);
	sink = r;
	return r + 1;
}

int main(void)
{
	return outer(sink) > 0 ? 0 : 1;
}
