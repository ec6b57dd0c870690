package sampler

// The BPF objects are committed, so building bprof needs no clang; `make generate` runs this.
//go:generate go tool bpf2go -cc clang-19 -target amd64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -type sample_hdr -type py_offsets -type py_proc -type py_thread_key -type offcpu_state -type wait_slot -type wait_key -type wait_total -type unwind_row -type unwind_map -type unwind_proc profile ../../bpf/profile.c -- -I../../bpf
