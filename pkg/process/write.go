package process

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// WriteAt writes p at address addr of the target, with process_vm_writev,
// or through /proc/PID/mem when that system call is not permitted. Both need
// ptrace access to the target (root, or CAP_SYS_PTRACE). The write is not
// atomic beyond what the CPU makes of one aligned store of up to 8 bytes.
func (m *Memory) WriteAt(p []byte, addr int64) (int, error) {
	if addr < 0 {
		return 0, fmt.Errorf("write memory of pid %d at %#x: negative address", m.pid, uint64(addr))
	}
	done := 0
	for done < len(p) {
		local := []unix.Iovec{{Base: &p[done]}}
		local[0].SetLen(len(p) - done)
		remote := []unix.RemoteIovec{{Base: uintptr(addr) + uintptr(done), Len: len(p) - done}}
		n, err := unix.ProcessVMWritev(m.pid, local, remote, 0)
		if err != nil {
			if done == 0 && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS)) {
				return m.writeMem(p, addr)
			}
			return done, fmt.Errorf("write memory of pid %d at %#x: %w", m.pid, addr, err)
		}
		if n == 0 {
			return done, fmt.Errorf("write memory of pid %d at %#x: %w", m.pid, addr, io.ErrShortWrite)
		}
		done += n
	}
	return done, nil
}

func (m *Memory) writeMem(p []byte, addr int64) (int, error) {
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", m.pid), os.O_WRONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("write memory of pid %d: %w", m.pid, err)
	}
	defer f.Close()
	n, err := f.WriteAt(p, addr)
	if err != nil {
		return n, fmt.Errorf("write memory of pid %d at %#x: %w", m.pid, addr, err)
	}
	return n, nil
}
