package process

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// StatFile is a process's /proc/PID/stat held open, to be read again and
// again: a watch that opens the file at every look pays seven system calls
// (open, fcntl, two epoll_ctl, fstat, read, close) for one, and each system
// call is a VM exit on the machines bprof was measured on. The open file
// stays tied to the process it was opened for: once that process is gone
// (reaped), Read fails, even if a new process took its PID.
type StatFile struct {
	pid int
	fd  int
	buf [1024]byte // a stat line is ~300 bytes, the command name at most 64
}

// OpenStat opens pid's /proc/PID/stat.
func OpenStat(pid int) (*StatFile, error) {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/stat", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open stat of pid %d: %w", pid, err)
	}
	return &StatFile{pid: pid, fd: fd}, nil
}

// Read reads and parses the file afresh.
func (f *StatFile) Read() (Stat, error) {
	// Through RawSyscall: procfs writes the line from the kernel's own
	// records and never blocks, and a system call the Go scheduler is told
	// of wakes its monitor thread, which then polls every 20 µs for a
	// millisecond (processVMReadv).
	r, _, errno := unix.RawSyscall6(unix.SYS_PREAD64, uintptr(f.fd), uintptr(unsafe.Pointer(&f.buf[0])), uintptr(len(f.buf)), 0, 0, 0)
	if errno != 0 {
		return Stat{}, fmt.Errorf("read stat of pid %d: %w", f.pid, errno)
	}
	n := int(r)
	if n == len(f.buf) {
		return Stat{}, fmt.Errorf("read stat of pid %d: longer than %d bytes", f.pid, len(f.buf))
	}
	return ParseStat(f.buf[:n])
}

// Close closes the file.
func (f *StatFile) Close() error { return unix.Close(f.fd) }
