package process

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

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
		n, err := unix.ProcessVMReadv(m.pid, local, remote, 0)
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
