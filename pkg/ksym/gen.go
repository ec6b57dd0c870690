package ksym

// The BPF object is committed, so building bprof needs no clang; `make generate` runs this.
//go:generate go tool bpf2go -cc clang-19 -target amd64 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -type ksym_batch ksym ../../bpf/ksym.c -- -I../../bpf
