// A small program for TestCompiledProgram: main calls work, whose 4 KiB
// buffer and six pushes give a large rsp-based CFA offset. Built by the
// test with gcc -O2 -fomit-frame-pointer (and once more with the unwind
// tables in .debug_frame only).
#include <stdio.h>
#include <string.h>

__attribute__((noinline)) static long work(const char *s, int n) {
	char buf[4096];
	long sum = 0;
	for (int i = 0; i < n; i++) {
		snprintf(buf, sizeof buf, "%s-%d", s, i);
		sum += (long)strlen(buf);
	}
	return sum;
}

int main(int argc, char **argv) {
	printf("%ld\n", work(argv[0], argc * 1000));
	return 0;
}
