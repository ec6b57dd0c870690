// libtarget is the shared library the target program links.
// Built at test time: gcc -O0 -shared -fPIC -o libtarget.so libtarget.c
//
// bprof_lib_func is static so that its address is its own, not a PLT entry
// of a non-PIE executable.
__attribute__((noinline)) static int bprof_lib_func(int x) { return x + 7; }

void *bprof_lib_addr(void) { return (void *)bprof_lib_func; }
