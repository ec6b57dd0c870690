package agent

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
)

// syncBuffer is a log destination tests can read while the agent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newScanAgent starts a system-wide agent over a fake source that scans
// /proc every 50 ms, so that tests wait less for it to see processes.
func newScanAgent(t *testing.T, src *fakeSource, opts Options) *Agent {
	t.Helper()
	opts.Source, opts.SystemWide = src, true
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	a.alive = func(int) bool { return true }
	a.scanEvery = 50 * time.Millisecond
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	return a
}

// waitFor polls cond until it holds, or fails the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20 s for %s", what)
		}
	}
}

func (f *fakeSource) has(pid int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pids[pid]
}

// startProc starts a process that lives until the test ends.
func startProc(t *testing.T, stdin io.Reader, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// TestSystemWideFilter runs system-wide agents over real processes: each
// filter takes the processes it should, turns the others down with a debug
// line, and takes a matching process that starts after the agent did.
func TestSystemWideFilter(t *testing.T) {
	testenv.RequireRoot(t)
	py := testenv.RequireCommand(t, "python3")
	sleep := testenv.RequireCommand(t, "sleep")
	// The group is made first so that it is removed last (cleanups run in
	// reverse): after the process in it is killed and reaped.
	cg := filepath.Join("/sys/fs/cgroup/unified", fmt.Sprintf("bprof-filter-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatalf("make cgroup: %v", err)
	}
	t.Cleanup(func() {
		for deadline := time.Now().Add(5 * time.Second); os.Remove(cg) != nil && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	})
	park := "import time; time.sleep(1000) # "
	pyA := startProc(t, nil, py, "-c", park+"bprof-filter-A").Process.Pid
	pyB := startProc(t, nil, py, "-c", park+"bprof-filter-B").Process.Pid
	sl := startProc(t, nil, sleep, "1000").Process.Pid
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(pyA)), 0); err != nil {
		t.Fatalf("move %d into %s: %v", pyA, cg, err)
	}

	for _, tt := range []struct {
		name       string
		filter     Filter
		take, skip []int
		late       string // a cmdline marker of a process started later that must be taken
	}{
		{"python only (default)", Filter{}, []int{pyA, pyB}, []int{sl}, "bprof-filter-late"},
		{"cmdline", Filter{Cmdline: regexp.MustCompile(`bprof-filter-(A|late)$`)}, []int{pyA}, []int{pyB, sl}, "bprof-filter-late"},
		{"comm, all processes", Filter{Comm: regexp.MustCompile(`^sleep$`), AllProcesses: true}, []int{sl}, []int{pyA, pyB}, ""},
		{"cgroup", Filter{Cgroup: regexp.MustCompile(`/bprof-filter-\d+$`)}, []int{pyA}, []int{pyB, sl}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(false)
			var log syncBuffer
			a := newScanAgent(t, src, Options{Filter: tt.filter, Sinks: []Sink{&memSink{}},
				Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			defer a.Stop()
			for _, pid := range tt.take {
				waitFor(t, fmt.Sprintf("pid %d to be taken", pid), func() bool { return src.has(pid) })
			}
			for _, pid := range tt.skip {
				line := fmt.Sprintf("system-wide: not profiled\" pid=%d ", pid)
				waitFor(t, fmt.Sprintf("a debug line for pid %d", pid), func() bool { return strings.Contains(log.String(), line) })
				if src.has(pid) {
					t.Errorf("pid %d taken, want it turned down", pid)
				}
			}
			if tt.late != "" {
				pid := startProc(t, nil, py, "-c", park+tt.late).Process.Pid
				waitFor(t, "the late process to be taken", func() bool { return src.has(pid) })
			}
		})
	}
}

// TestSystemWideFilterExec: a process turned down as a shell is taken once
// it execs into python, as pyenv's shims do.
func TestSystemWideFilterExec(t *testing.T) {
	testenv.RequireRoot(t)
	py := testenv.RequireCommand(t, "python3")
	src := newFakeSource(false)
	var log syncBuffer
	a := newScanAgent(t, src, Options{Sinks: []Sink{&memSink{}},
		Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	defer a.Stop()
	r, w := io.Pipe()
	defer w.Close()
	pid := startProc(t, r, "sh", "-c", `read go; exec "$0" -c "import time; time.sleep(1000)"`, py).Process.Pid
	line := fmt.Sprintf("system-wide: not profiled\" pid=%d ", pid)
	waitFor(t, "the shell to be turned down", func() bool { return strings.Contains(log.String(), line) })
	if src.has(pid) {
		t.Fatal("the shell was taken")
	}
	fmt.Fprintln(w, "go")
	waitFor(t, "the shell, now python, to be taken", func() bool { return src.has(pid) })
}

func TestCgroupMatches(t *testing.T) {
	re := regexp.MustCompile(`^/kubepods`)
	for file, want := range map[string]bool{
		"0::/kubepods/pod1/abc\n":          true,
		"4:memory:/kubepods/x\n0::/\n":     true,
		"0::/system.slice/kubepods\n":      false,
		"garbage\n0::/kubepods\n":          false, // not a cgroup file: matches nothing
		"":                                 false,
		"1:name=systemd:/kubepods:weird\n": true,
	} {
		if got := cgroupMatches(re, file); got != want {
			t.Errorf("cgroupMatches(%q) = %v, want %v", file, got, want)
		}
	}
}

// TestSystemWideFilterForkExec: a python that forks and execs python with
// other arguments (subprocess.Popen([sys.executable, ...])) keeps its
// executable; the new command line is matched.
func TestSystemWideFilterForkExec(t *testing.T) {
	testenv.RequireRoot(t)
	py := testenv.RequireCommand(t, "python3")
	src := newFakeSource(false)
	var log syncBuffer
	a := newScanAgent(t, src, Options{Filter: Filter{Cmdline: regexp.MustCompile(`bprof-forkexec-after`)},
		Sinks: []Sink{&memSink{}}, Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	defer a.Stop()
	r, w := io.Pipe()
	defer w.Close()
	// The marker is put together at run time: the command line before the
	// exec must not hold it.
	script := `import os, sys; sys.stdin.readline(); os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(1000) # bprof-forkexec-" + "after"])`
	pid := startProc(t, r, py, "-c", script).Process.Pid
	line := fmt.Sprintf("system-wide: not profiled\" pid=%d ", pid)
	waitFor(t, "the process to be turned down before its exec", func() bool { return strings.Contains(log.String(), line) })
	fmt.Fprintln(w, "go")
	waitFor(t, "the process to be taken after its exec", func() bool { return src.has(pid) })
}

func TestRecheckAfter(t *testing.T) {
	for _, tt := range []struct{ age, want time.Duration }{
		{0, 0}, {9 * time.Second, 0}, {20 * time.Second, 5 * time.Second}, {2 * time.Minute, 30 * time.Second},
		{time.Hour, time.Minute},
	} {
		if got := recheckAfter(tt.age); got != tt.want {
			t.Errorf("recheckAfter(%s) = %s, want %s", tt.age, got, tt.want)
		}
	}
}
