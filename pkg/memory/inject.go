package memory

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/python"
	"golang.org/x/sys/unix"
)

// placeDirs are where the library may go in a target's filesystem, in order.
var placeDirs = []string{"/tmp", "/dev/shm", "/var/tmp"}

// Place writes the library into pid's filesystem (through /proc/PID/root,
// so a process in a container or a chroot gets it in its own /tmp) unless an
// identical copy is there, and returns its path as the target sees it. The
// file is root's, mode 0644: any user may load it, nobody else may change it
// (a sticky /tmp).
func Place(pid int) (string, error) {
	var errs []string
	for _, dir := range placeDirs {
		p, err := placeIn(pid, dir, libraryName, library, 0o644)
		if err == nil {
			return p, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", dir, shortErr(err)))
	}
	return "", fmt.Errorf("cannot write bprof's allocation sampler into process %d's filesystem (%s)", pid, strings.Join(errs, "; "))
}

// placeIn writes data as dir/name in pid's filesystem, atomically, unless a
// root-owned file with the same content is there.
func placeIn(pid int, dir, name string, data []byte, mode os.FileMode) (string, error) {
	hostDir := fmt.Sprintf("/proc/%d/root%s", pid, dir)
	host := filepath.Join(hostDir, name)
	if same(host, data) {
		return filepath.Join(dir, name), nil
	}
	tmp := filepath.Join(hostDir, "."+name+"."+nonce())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode) // whatever the umask
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, host)
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// same reports whether path is a regular file owned by root holding data.
func same(path string, data []byte) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != 0 || st.Size != int64(len(data)) {
		return false
	}
	got, err := io.ReadAll(io.LimitReader(f, int64(len(data))+1))
	return err == nil && bytes.Equal(got, data)
}

func nonce() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// shortErr drops the path from an *os.PathError: the caller names the directory.
func shortErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// loaderScript loads the library into the running interpreter with ctypes
// and hooks the object and mem domains (sampling stays off until bprof
// turns it on), then writes "ok" or the error to the status file. It runs
// with the GIL held, in __main__'s namespace: it leaves no name behind.
// PyDLL, not CDLL: its calls keep the GIL, so no other thread allocates
// while the allocators are swapped. Running it twice is harmless.
const loaderScript = `def _bprof_alloc_load(lib, status, script):
    try:
        import ctypes, sys, sysconfig
        if sysconfig.get_config_var("Py_GIL_DISABLED"):
            raise RuntimeError("free-threaded CPython is not supported")
        dll = ctypes.PyDLL(lib)
        dll.bprof_alloc_install.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32]
        dll.bprof_alloc_install.restype = ctypes.c_uint32
        api = ctypes.pythonapi
        got = dll.bprof_alloc_install(ctypes.cast(api.PyMem_GetAllocator, ctypes.c_void_p),
                                      ctypes.cast(api.PyMem_SetAllocator, ctypes.c_void_p), 6)
        msg = "ok %d" % got
    except BaseException as e:
        msg = "error %s: %s" % (type(e).__name__, e)
    try:
        import os
        if os.path.exists(script):  # else bprof is done waiting: leave nothing behind
            with open(status, "x") as f:
                f.write(msg)
    except OSError:
        pass
_bprof_alloc_load(LIB, STATUS)
del _bprof_alloc_load
`

// CheckInject says, without changing the target, whether Inject can work:
// remote debugging is on in the 3.14+ runtime at runtimeAddr, and the library
// can be placed in its filesystem (it is, which is harmless).
func CheckInject(pid int, runtimeAddr uint64) error {
	mem := process.NewMemory(pid)
	defer mem.Close()
	if err := python.CheckRemoteExec(mem, runtimeAddr); err != nil {
		if errors.Is(err, python.ErrRemoteDebugDisabled) {
			return fmt.Errorf("process %d: %w: use bprof_client in it instead", pid, err)
		}
		return fmt.Errorf("process %d: %w", pid, err)
	}
	if _, err := Place(pid); err != nil {
		return err
	}
	// The loader script needs a writable directory too (the library may
	// have been there already, in one that is read-only now).
	dir, err := placeScript(pid, ".bprof-check-"+nonce(), nil)
	if err != nil {
		return err
	}
	os.Remove(fmt.Sprintf("/proc/%d/root%s", pid, dir))
	return nil
}

// placeScript writes data as name in the first of placeDirs where it can,
// and returns its path as the target sees it.
func placeScript(pid int, name string, data []byte) (string, error) {
	var errs []string
	for _, dir := range placeDirs {
		p, err := placeIn(pid, dir, name, data, 0o644)
		if err == nil {
			return p, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", dir, shortErr(err)))
	}
	return "", fmt.Errorf("cannot write bprof's loader script into process %d's filesystem (%s)", pid, strings.Join(errs, "; "))
}

// InjectTimeout is how long Inject waits for the target to run the loader.
const InjectTimeout = 5 * time.Second

// Inject loads the allocation sampler into pid, a CPython 3.14+ whose
// _PyRuntime is at runtimeAddr, by PEP 768 remote execution, and returns it
// (sampling off). A process that has it loaded already is returned as is.
func Inject(pid int, runtimeAddr uint64, timeout time.Duration) (*Sampler, error) {
	if s, err := Find(pid); err == nil {
		return s, nil
	}
	lib, err := Place(pid)
	if err != nil {
		return nil, err
	}
	// The script and its status file go where the script can be written,
	// which need not be where the library is.
	stem := fmt.Sprintf("bprof-alloc-%d-%s", pid, nonce())
	var scriptPath, status string
	var errs []string
	for _, dir := range placeDirs {
		status = filepath.Join(dir, stem+".status")
		script := strings.NewReplacer("(LIB, STATUS)", "("+strconv.Quote(lib)+", "+strconv.Quote(status)+", "+
			strconv.Quote(filepath.Join(dir, stem+".py"))+")").Replace(loaderScript)
		if scriptPath, err = placeIn(pid, dir, stem+".py", []byte(script), 0o644); err == nil {
			break
		}
		errs = append(errs, fmt.Sprintf("%s: %v", dir, shortErr(err)))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot write bprof's loader script into process %d's filesystem (%s)", pid, strings.Join(errs, "; "))
	}
	hostStatus := fmt.Sprintf("/proc/%d/root%s", pid, status)
	hostScript := fmt.Sprintf("/proc/%d/root%s", pid, scriptPath)
	defer func() {
		// The script first: a thread that runs it late writes no status;
		// one that checked just before may still write it, during its
		// switch interval or so: look again a little later.
		os.Remove(hostScript)
		os.Remove(hostStatus)
		go func() {
			for _, d := range []time.Duration{50 * time.Millisecond, 500 * time.Millisecond} {
				time.Sleep(d)
				os.Remove(hostStatus)
			}
		}()
	}()

	mem := process.NewMemory(pid)
	defer mem.Close()
	if _, err := python.RemoteExec(mem, runtimeAddr, scriptPath); err != nil {
		switch {
		case errors.Is(err, python.ErrRemoteDebugDisabled):
			return nil, fmt.Errorf("process %d: %w: use bprof_client in it instead", pid, err)
		case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
			return nil, fmt.Errorf("process %d: no permission to write its memory (bprof needs ptrace access to it: root or CAP_SYS_PTRACE, and kernel.yama.ptrace_scope below 3): %v", pid, err)
		}
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	if timeout <= 0 {
		timeout = InjectTimeout
	}
	msg, err := waitStatus(pid, hostStatus, timeout)
	python.CancelRemoteExec(mem, runtimeAddr) // the other threads need not run it
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(msg, "ok") {
		return nil, fmt.Errorf("process %d could not load bprof's allocation sampler from %s: %s", pid, lib, strings.TrimPrefix(msg, "error "))
	}
	return Find(pid)
}

// waitStatus waits for the loader's status file.
func waitStatus(pid int, path string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0); err == nil {
			b, _ := io.ReadAll(io.LimitReader(f, 512))
			f.Close()
			if len(b) > 0 {
				return strings.TrimSpace(strings.ReplaceAll(string(b), "\n", " ")), nil
			}
		}
		if !process.Exists(pid) {
			return "", fmt.Errorf("process %d exited before it loaded bprof's allocation sampler", pid)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("process %d did not run bprof's loader within %s: no thread of it reached a safe point of the interpreter (blocked in a system call or in C code?)", pid, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
