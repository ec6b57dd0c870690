// prog is the process the tests of package symbolize name frames of.
// Built at test time: gcc -O0 -fno-omit-frame-pointer -o prog prog.c
// It prints the addresses of its functions and two return addresses, then
// blocks until its standard input closes.
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) void bprof_wait(void) {
	char b;
	while (read(0, &b, 1) > 0) {
	}
	_exit(0);
}

// bprof_die never returns, so the call to it may be the last instruction
// of bprof_caller and its return address the first byte of the next
// function.
__attribute__((noinline, noreturn)) void bprof_die(void) {
	printf("die %p\n", __builtin_return_address(0));
	fflush(stdout);
	bprof_wait();
	_exit(0);
}

__attribute__((noinline)) void bprof_caller(void) { bprof_die(); }

__attribute__((noinline)) int bprof_after(int x) { return x + 1; }

__attribute__((noinline)) int bprof_leaf(int x) {
	printf("leaf %p\n", __builtin_return_address(0));
	return x * 2;
}

__attribute__((noinline)) int bprof_middle(int x) { return bprof_leaf(x) + 1; }

int main(void) {
	printf("fn %p %p %p %p\n", (void *)bprof_leaf, (void *)bprof_middle, (void *)bprof_caller,
	       (void *)bprof_after);
	bprof_middle(1);
	bprof_caller();
}
