package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bprof/bprof/pkg/dump"
)

const dumpSynopsis = `dump -p PID

Prints every thread's stack once: Python frames (CPython 3.7+), native and
kernel frames, the thread's name and whether it is on the CPU, waiting, or
waiting for the GIL. For a service that hangs. The target is never stopped:
each piece is one read of /proc or of its memory, and it takes well under a
second. A thread on the CPU shows its Python frames only (its registers are
not readable while it runs) unless --running samples it: that loads bprof's
BPF programs, which adds a second or two.

Examples:
  sudo bprof dump -p 4242
  sudo bprof dump -p 4242 --running`

func runDump(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dump", dumpSynopsis, stderr)
	pid := fs.IntP("pid", "p", 0, "process to dump")
	running := fs.Bool("running", false, "also sample the threads on the CPU for 250 ms, for their native and kernel frames (loads BPF: a second or two more)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{errors.New("unexpected argument " + fs.Arg(0) + ": give the process as -p PID")}
	}
	if *pid == 0 {
		return usageError{errors.New("no target: give -p PID")}
	}
	if os.Geteuid() != 0 {
		return errors.New("bprof dump reads other processes' stacks and memory: run it as root (sudo)")
	}
	d, err := dump.Take(*pid)
	if err != nil {
		return err
	}
	if *running {
		if err := dump.SampleRunning(d, 250*time.Millisecond); err != nil {
			fmt.Fprintf(stderr, "bprof dump: %v; running threads keep their Python frames only\n", err)
		}
	}
	return dump.Write(stdout, d)
}
