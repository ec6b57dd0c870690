package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/process"
)

// pyenvPython returns pyenv's CPython 3.minor (built with symbols), or skips.
func pyenvPython(t *testing.T, minor int) string {
	t.Helper()
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".pyenv")
	}
	bins, _ := filepath.Glob(filepath.Join(root, "versions", "3."+strconv.Itoa(minor)+".*", "bin", "python3"))
	if len(bins) == 0 {
		testenv.Skip(t, "needs pyenv's CPython 3."+strconv.Itoa(minor))
	}
	return bins[0]
}

// dumpThreads splits bprof dump's output into its thread sections.
func dumpThreads(out string) []string {
	parts := strings.Split(out, "\nThread ")
	return parts[1:]
}

// waitBlocked waits until at least n threads of pid are blocked (state S):
// "ready" is printed when the threads have started, not yet blocked.
func waitBlocked(t *testing.T, pid, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		tids, _ := process.Threads(pid)
		blocked := 0
		for _, tid := range tids {
			if st, err := process.State(pid, tid); err == nil && st == 'S' {
				blocked++
			}
		}
		if blocked >= n {
			return
		}
	}
	t.Fatalf("fewer than %d threads of %d blocked after 20 s", n, pid)
}

// TestDump: a 100-thread Python process is dumped in under a second, with
// each thread's Python, native and kernel frames and its state.
func TestDump(t *testing.T) {
	testenv.RequireRoot(t)
	python := pyenvPython(t, 12)
	// main + sleeper + 96 waiters + 2 spinners = 100 threads.
	proc := testenv.Start(t, python, "../../testdata/python/hang.py", "96")
	if line, _ := proc.Stdout.ReadString('\n'); line != "ready\n" {
		t.Fatalf("target said %q", line)
	}
	waitBlocked(t, proc.Cmd.Process.Pid, 98) // main, the sleeper and the 96 waiters
	pid := strconv.Itoa(proc.Cmd.Process.Pid)
	var out string
	gil := false
	// One spinner holds the GIL while the other waits for it, waking every
	// 5 ms (the switch interval) to ask for it. On two CPUs the dump itself
	// competes with the spinners, so the woken waiter often sits runnable
	// (state R, not read) rather than asleep in take_gil: here about two
	// dumps in five find both spinners on the CPU. Dump until one finds the
	// waiter asleep, for up to 10 s.
	tries := 0
	for deadline := time.Now().Add(10 * time.Second); !gil && time.Now().Before(deadline); tries++ {
		var stdout, stderr bytes.Buffer
		began := time.Now()
		if code := mainWith([]string{"dump", "-p", pid}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		if took := time.Since(began); took > time.Second {
			t.Errorf("dump of 100 threads took %s, want under 1 s", took)
		}
		out = stdout.String()
		for _, th := range dumpThreads(out) {
			if strings.Contains(th, ": waiting for the GIL\n") && strings.Contains(th, "    spin (") && strings.Contains(th, "take_gil") {
				gil = true
			}
		}
	}
	t.Logf("header: %s", strings.SplitN(out, "\n", 2)[0])
	if !regexp.MustCompile(`^Process \d+ \(python3\), Python 3\.12\.\d+: 100 threads`).MatchString(out) {
		t.Fatalf("header: %.200q", out)
	}
	if !gil {
		t.Errorf("no spinner waiting for the GIL in %d dumps over 10 s", tries)
	}
	threads := dumpThreads(out)
	var sleeper, waiters int
	for _, th := range threads {
		switch {
		case strings.Contains(th, "    sleeper ("):
			sleeper++
			for _, want := range []string{": waiting\n", "hang.py:16)", "time_sleep (libpython3.12", "clock_nanosleep", "  kernel:\n"} {
				if !strings.Contains(th, want) {
					t.Errorf("sleeper thread lacks %q:\n%s", want, th)
				}
			}
		case strings.Contains(th, "    blocked_on_lock ("):
			waiters++
			if !strings.Contains(th, ": waiting\n") || !strings.Contains(th, "PyThread_acquire_lock_timed") || !strings.Contains(th, "futex") {
				t.Errorf("lock waiter lacks its state, native or kernel frames:\n%s", th)
			}
		}
	}
	if sleeper != 1 || waiters != 96 {
		t.Errorf("%d sleeper and %d lock waiters, want 1 and 96", sleeper, waiters)
	}
}

func TestDumpErrors(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"dump", "-p", "999999999"}, 1, "no process with PID 999999999"},
		{[]string{"dump"}, 2, "no target"},
		{[]string{"dump", "4242"}, 2, "give the process as -p PID"},
	} {
		var stdout, stderr bytes.Buffer
		code := mainWith(tc.args, &stdout, &stderr)
		msg := strings.TrimSpace(stderr.String())
		if code != tc.code || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") || stdout.Len() != 0 {
			t.Errorf("%v: exit %d, stderr %q, stdout %d bytes; want exit %d and one line containing %q", tc.args, code, msg, stdout.Len(), tc.code, tc.want)
		}
	}
}

// TestDumpRunning: --running gives the threads on the CPU their native
// frames, from a sample.
func TestDumpRunning(t *testing.T) {
	testenv.RequireRoot(t)
	python := pyenvPython(t, 12)
	proc := testenv.Start(t, python, "../../testdata/python/hang.py", "0")
	if line, _ := proc.Stdout.ReadString('\n'); line != "ready\n" {
		t.Fatalf("target said %q", line)
	}
	var stdout, stderr bytes.Buffer
	if code := mainWith([]string{"dump", "-p", strconv.Itoa(proc.Cmd.Process.Pid), "--running"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	assertNoBPFLeft(t)
	sampled := 0
	for _, th := range dumpThreads(stdout.String()) {
		if strings.Contains(th, ": on CPU\n") && strings.Contains(th, "from a sample taken on the CPU") {
			sampled++
			// The spinner runs Python: its sample holds the eval loop.
			if !strings.Contains(th, "    spin (") || !strings.Contains(th, "_PyEval_EvalFrameDefault") {
				t.Errorf("a sampled thread lacks its Python or native frames:\n%s", th)
			}
		}
	}
	// One spinner holds the GIL and runs; the other is mostly asleep in
	// take_gil. At least the one running is on the CPU and sampled: in
	// 250 ms at 100 Hz it has ~25 samples.
	if sampled == 0 {
		t.Errorf("no thread on the CPU got sampled frames:\n%s", stdout.String())
	}
}
