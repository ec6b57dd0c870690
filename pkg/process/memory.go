package process

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Memory reads another process's memory. It uses process_vm_readv, and
// falls back to /proc/PID/mem when that system call is not permitted or
// not available (seccomp, old kernels). Both need ptrace access to the
// target (root, or CAP_SYS_PTRACE).
//
// Memory is safe for concurrent use. Close releases the /proc/PID/mem
// descriptor if the fallback opened one.
type Memory struct {
	pid int

	mu       sync.Mutex
	fallback bool     // process_vm_readv failed with EPERM or ENOSYS
	mem      *os.File // /proc/PID/mem, opened on first fallback read
}

// NewMemory returns a reader of process pid's memory. It opens nothing
// until the first read.
func NewMemory(pid int) *Memory { return &Memory{pid: pid} }

// ReadAt reads len(p) bytes at address addr of the target. It follows
// io.ReaderAt: when it reads fewer bytes (the range crosses into unmapped
// memory) it returns how many and an error.
func (m *Memory) ReadAt(p []byte, addr int64) (int, error) {
	if addr < 0 {
		return 0, fmt.Errorf("read memory of pid %d at %#x: negative address", m.pid, uint64(addr))
	}
	if len(p) == 0 {
		return 0, nil
	}
	m.mu.Lock()
	fallback := m.fallback
	m.mu.Unlock()
	if !fallback {
		n, err := m.readv(p, uint64(addr))
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.ENOSYS) || n > 0 {
			return n, fmt.Errorf("read memory of pid %d at %#x: %w", m.pid, addr, err)
		}
		m.mu.Lock()
		m.fallback = true
		m.mu.Unlock()
	}
	return m.readMem(p, addr)
}

// readv reads with process_vm_readv, repeating after a partial read (the
// kernel stops at a page it cannot read) until all of p is read or a call
// fails.
func (m *Memory) readv(p []byte, addr uint64) (int, error) {
	done := 0
	for done < len(p) {
		local := []unix.Iovec{{Base: &p[done]}}
		local[0].SetLen(len(p) - done)
		remote := []unix.RemoteIovec{{Base: uintptr(addr + uint64(done)), Len: len(p) - done}}
		n, err := processVMReadv(m.pid, local, remote, len(p)-done)
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, io.ErrUnexpectedEOF
		}
		done += n
	}
	return done, nil
}

func (m *Memory) readMem(p []byte, addr int64) (int, error) {
	m.mu.Lock()
	if m.mem == nil {
		f, err := os.Open(fmt.Sprintf("/proc/%d/mem", m.pid))
		if err != nil {
			m.mu.Unlock()
			return 0, fmt.Errorf("read memory of pid %d: %w", m.pid, err)
		}
		m.mem = f
	}
	f := m.mem
	m.mu.Unlock()
	n, err := f.ReadAt(p, addr)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return n, fmt.Errorf("read memory of pid %d at %#x: %w", m.pid, addr, err)
	}
	return n, nil
}

// Uint64 reads a native-endian 64-bit word at addr.
func (m *Memory) Uint64(addr uint64) (uint64, error) {
	var b [8]byte
	if _, err := m.ReadAt(b[:], int64(addr)); err != nil {
		return 0, err
	}
	return binary.NativeEndian.Uint64(b[:]), nil
}

// Uint32 reads a native-endian 32-bit word at addr.
func (m *Memory) Uint32(addr uint64) (uint32, error) {
	var b [4]byte
	if _, err := m.ReadAt(b[:], int64(addr)); err != nil {
		return 0, err
	}
	return binary.NativeEndian.Uint32(b[:]), nil
}

// Close releases the /proc/PID/mem descriptor, if one was opened. The
// Memory may not be used after.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mem == nil {
		return nil
	}
	err := m.mem.Close()
	m.mem = nil
	return err
}

// ReadVDSO returns a copy of the calling process's vDSO image, which the
// kernel maps, identical, into every process: its unwind tables and symbols
// serve for any target's [vdso] mapping.
func ReadVDSO() ([]byte, error) {
	ms, err := ReadMaps(os.Getpid())
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.Path != "[vdso]" {
			continue
		}
		if m.End-m.Start > 1<<20 {
			return nil, fmt.Errorf("read vdso: mapping of %d bytes is implausible", m.End-m.Start)
		}
		img := make([]byte, m.End-m.Start)
		if _, err := NewMemory(os.Getpid()).ReadAt(img, int64(m.Start)); err != nil {
			return nil, fmt.Errorf("read vdso: %w", err)
		}
		return img, nil
	}
	return nil, fmt.Errorf("read vdso: no [vdso] mapping in this process")
}

// maxIovecs is the most iovecs one process_vm_readv takes (IOV_MAX).
const maxIovecs = 1024

// ReadWords reads the 8-byte word at each of addrs into out (in the
// machine's byte order), in one system call per 1024 addresses where
// process_vm_readv serves. It returns how many words it read, from the
// first: a word it cannot read ends the run, with its error.
func (m *Memory) ReadWords(addrs, out []uint64) (int, error) {
	if len(out) < len(addrs) {
		return 0, fmt.Errorf("read words of pid %d: %d addresses for %d words", m.pid, len(addrs), len(out))
	}
	done := 0
	var remote []unix.RemoteIovec
	for done < len(addrs) {
		m.mu.Lock()
		fallback := m.fallback
		m.mu.Unlock()
		if fallback {
			break
		}
		k := min(len(addrs)-done, maxIovecs)
		remote = remote[:0]
		for _, a := range addrs[done : done+k] {
			remote = append(remote, unix.RemoteIovec{Base: uintptr(a), Len: 8})
		}
		local := []unix.Iovec{{Base: (*byte)(unsafe.Pointer(&out[done]))}}
		local[0].SetLen(8 * k)
		n, err := processVMReadv(m.pid, local, remote, 8*k)
		whole := max(n, 0) / 8
		done += whole
		if err == nil && whole == k {
			continue
		}
		// The word at done stopped the run. ReadAt below reads it again
		// alone: for its error, or through /proc/PID/mem when
		// process_vm_readv is not permitted.
		break
	}
	var b [8]byte
	for ; done < len(addrs); done++ {
		if _, err := m.ReadAt(b[:], int64(addrs[done])); err != nil {
			return done, err
		}
		out[done] = *(*uint64)(unsafe.Pointer(&b))
	}
	return done, nil
}

// rawReadMax is the largest read made without telling the Go scheduler
// about the system call.
const rawReadMax = 64 << 10

// processVMReadv is unix.ProcessVMReadv, but a read of up to rawReadMax
// bytes goes through RawSyscall: it does not block (the target's pages are
// copied, or the call fails at the first one missing), so it need not hand
// its thread's P to the scheduler. A system call through the scheduler
// also wakes the runtime's monitor thread from its sleep, and a woken
// monitor polls every 20 µs for the next millisecond: at every batch of
// samples, that cost more than naming the batch (perf, 2026-12-02).
func processVMReadv(pid int, local []unix.Iovec, remote []unix.RemoteIovec, size int) (int, error) {
	if size > rawReadMax {
		return unix.ProcessVMReadv(pid, local, remote, 0)
	}
	n, _, errno := unix.RawSyscall6(unix.SYS_PROCESS_VM_READV, uintptr(pid),
		uintptr(unsafe.Pointer(&local[0])), uintptr(len(local)),
		uintptr(unsafe.Pointer(&remote[0])), uintptr(len(remote)), 0)
	if errno != 0 {
		return int(n), errno
	}
	return int(n), nil
}
