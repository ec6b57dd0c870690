// target is the process the tests of package process look at.
// Built at test time: gcc -O0 [-pie|-no-pie] -o target target.c -L. -ltarget -Wl,-rpath,DIR
// It prints the addresses of its marker, two functions and a library
// function, then blocks until its standard input closes.
#include <stdio.h>
#include <unistd.h>

extern void *bprof_lib_addr(void);

volatile unsigned long bprof_marker = 0x1122334455667788UL;

__attribute__((noinline)) int bprof_target_func(int x) { return x * 3 + 1; }

__attribute__((noinline)) int bprof_other_func(int x) { return bprof_target_func(x) + 2; }

int main(void) {
	char buf[1];
	printf("%p %p %p %p\n", (void *)&bprof_marker, (void *)bprof_target_func,
	       (void *)bprof_other_func, bprof_lib_addr());
	fflush(stdout);
	while (read(0, buf, 1) > 0) {
	}
	return bprof_other_func(0) == 0;
}
