package process

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Blocked is where a thread that is off the CPU stopped in user space, from
// /proc/PID/task/TID/syscall: the kernel fills it in from the registers it
// saved when the thread entered the kernel, without stopping the thread.
type Blocked struct {
	Syscall int    // the system call number; -1 when blocked outside one (a page fault)
	SP, PC  uint64 // the user stack pointer and program counter
}

// ErrRunning is returned by ReadBlocked for a thread on the CPU: its
// registers change as they would be read, and the kernel does not say.
var ErrRunning = errors.New("thread is running")

// ReadBlocked reads /proc/PID/task/TID/syscall (root, or ptrace access).
func ReadBlocked(pid, tid int) (Blocked, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/syscall", pid, tid))
	if err != nil {
		return Blocked{}, fmt.Errorf("read user registers of thread %d: %w", tid, err)
	}
	return ParseBlocked(b)
}

// ParseBlocked parses the one line of /proc/PID/task/TID/syscall:
// "NR ARG0 ... ARG5 SP PC" (NR decimal, the rest hex), "-1 SP PC" outside a
// system call, or "running".
func ParseBlocked(b []byte) (Blocked, error) {
	f := strings.Fields(string(b))
	if len(f) == 1 && f[0] == "running" {
		return Blocked{}, ErrRunning
	}
	if len(f) != 3 && len(f) != 9 {
		return Blocked{}, &ParseError{File: "syscall", Msg: fmt.Sprintf("want 3 or 9 fields, have %d", len(f))}
	}
	nr, err := strconv.Atoi(f[0])
	if err != nil || nr < -1 || (len(f) == 3) != (nr == -1) {
		return Blocked{}, &ParseError{File: "syscall", Msg: fmt.Sprintf("bad system call number %q", f[0])}
	}
	var bl Blocked
	bl.Syscall = nr
	sp, pc := f[len(f)-2], f[len(f)-1]
	if bl.SP, err = strconv.ParseUint(strings.TrimPrefix(sp, "0x"), 16, 64); err != nil {
		return Blocked{}, &ParseError{File: "syscall", Msg: fmt.Sprintf("bad stack pointer %q", sp)}
	}
	if bl.PC, err = strconv.ParseUint(strings.TrimPrefix(pc, "0x"), 16, 64); err != nil {
		return Blocked{}, &ParseError{File: "syscall", Msg: fmt.Sprintf("bad program counter %q", pc)}
	}
	return bl, nil
}
