package python

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procMem reads a process's memory through /proc/PID/mem; offsets are
// virtual addresses.
type procMem struct{ f *os.File }

func openProcMem(t testing.TB, pid int) *procMem {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatalf("open memory of %d: %v", pid, err)
	}
	t.Cleanup(func() { f.Close() })
	return &procMem{f: f}
}

func (m *procMem) ReadAt(b []byte, off int64) (int, error) { return m.f.ReadAt(b, off) }

// mapping is one line of /proc/PID/maps.
type mapping struct {
	start, offset uint64
	path          string
}

func readMaps(t testing.TB, pid int) []mapping {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatalf("open maps: %v", err)
	}
	defer f.Close()
	var maps []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		start, _ := strconv.ParseUint(strings.SplitN(fields[0], "-", 2)[0], 16, 64)
		off, _ := strconv.ParseUint(fields[2], 16, 64)
		maps = append(maps, mapping{start: start, offset: off, path: fields[5]})
	}
	return maps
}

// findInProcess opens every interpreter file mapped in pid (libpython
// first) and returns the first one Find accepts.
func findInProcess(t testing.TB, pid int, mem *procMem) *Interpreter {
	t.Helper()
	var tried []string
	for _, lib := range []bool{true, false} {
		for _, m := range readMaps(t, pid) {
			base := m.path[strings.LastIndex(m.path, "/")+1:]
			if m.offset != 0 || !IsInterpreterFile(m.path) || strings.HasPrefix(base, "lib") != lib {
				continue
			}
			f, err := elf.Open(m.path)
			if err != nil {
				t.Fatalf("open %s: %v", m.path, err)
			}
			defer f.Close()
			in, err := Find(f, m.path, loadBias(t, f, m), mem)
			if err == nil {
				return in
			}
			tried = append(tried, err.Error())
		}
	}
	t.Fatalf("no interpreter found in process %d: %v", pid, tried)
	return nil
}

// loadBias is the mapping's start minus the address the file's first
// PT_LOAD (the one at file offset 0) was linked at.
func loadBias(t testing.TB, f *elf.File, m mapping) uint64 {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Off == 0 {
			return m.start - (p.Vaddr - p.Off)
		}
	}
	t.Fatalf("%s: no PT_LOAD at offset 0", m.path)
	return 0
}

// stopped sends SIGSTOP to pid, waits until every thread is stopped, and
// returns the function that resumes it.
func stopped(t testing.TB, pid int) func() {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("stop %d: %v", pid, err)
	}
	resume := func() { syscall.Kill(pid, syscall.SIGCONT) }
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if allStopped(pid) {
			return resume
		}
		time.Sleep(5 * time.Millisecond)
	}
	resume()
	t.Fatalf("process %d did not stop", pid)
	return nil
}

func allStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 >= len(s) || s[i+2] != 'T' {
			return false
		}
	}
	return true
}
