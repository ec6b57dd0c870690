// Package dump reads every thread's stack of a process once, for a service
// that hangs: where each thread is, and whether it is on the CPU, waiting,
// or waiting for the GIL.
//
// Nothing stops the target. Each piece is one read, each from its own
// place, so a thread that moves meanwhile may show pieces of two moments:
//
//   - state and name: /proc/PID/task/TID/stat and comm;
//   - kernel frames of a waiting thread: /proc/PID/task/TID/stack;
//   - native frames of a waiting thread: the user stack pointer and program
//     counter the kernel saved when it entered the kernel
//     (/proc/PID/task/TID/syscall), then a walk of its stack in user space
//     with each file's .eh_frame unwind rows (pkg/unwind), the same rules
//     the BPF walker follows, reading the stack with process_vm_readv;
//   - Python frames: the interpreter's thread states read from its memory
//     (CPython 3.11+, which records each thread's TID; before, glibc's
//     pthread does). That TID is the one in the process's own PID
//     namespace, so in a container it is mapped to the host's through
//     NSpid (process.LocalTIDs).
//
// A thread on the CPU has no saved registers to read: only a sample taken
// on the CPU has them (bprof top, bprof record). Its Python frames are read
// while it runs, and its native and kernel frames are left out, saying so.
package dump
