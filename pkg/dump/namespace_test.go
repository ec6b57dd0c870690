package dump

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/process"
)

// pyenvPython returns pyenv's CPython 3.minor, or skips.
func pyenvPython(t *testing.T, minor int) string {
	t.Helper()
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".pyenv")
	}
	bins, _ := filepath.Glob(filepath.Join(root, "versions", fmt.Sprintf("3.%d.*", minor), "bin", "python3"))
	if len(bins) == 0 {
		testenv.Skip(t, fmt.Sprintf("needs pyenv's CPython 3.%d", minor))
	}
	return bins[0]
}

// parkedScript parks three named threads and the main thread, each in its
// own function, and prints each one's TID as the process sees it (its own
// PID namespace), name and function, then "ready".
const parkedScript = `
import threading, time
def park_alpha(ev): ev.set(); time.sleep(1000)
def park_beta(ev): ev.set(); time.sleep(1000)
def park_gamma(ev): ev.set(); time.sleep(1000)
ths = []
for f, name in ((park_alpha, "alpha"), (park_beta, "beta"), (park_gamma, "gamma")):
    ev = threading.Event()
    th = threading.Thread(target=f, args=(ev,), name=name, daemon=True)
    th.start()
    ev.wait()
    ths.append((th, f.__name__))
def main_parks():
    for th, fn in ths:
        print(th.native_id, th.name, fn)
    print(threading.get_native_id(), "MainThread", "main_parks")
    print("ready", flush=True)
    time.sleep(1000)
main_parks()
`

// TestTakeInPIDNamespace: in a process that is PID 1 of its own PID
// namespace, CPython records namespace-local TIDs (1, 2, ...), which are
// other threads' IDs, or none, on the host. Each thread must get its own
// Python stack and threading name all the same. 3.12 records the TID in
// the thread state; 3.9 only in glibc's pthread.
func TestTakeInPIDNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "unshare")
	for _, minor := range []int{9, 12} {
		t.Run(fmt.Sprintf("3.%d", minor), func(t *testing.T) {
			python := pyenvPython(t, minor)
			proc := testenv.Start(t, "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", python, "-c", parkedScript)
			type want struct{ name, fn string }
			wants := map[int]want{} // by namespace-local TID
			for {
				line, err := proc.Stdout.ReadString('\n')
				if err != nil {
					t.Fatalf("namespaced python: %q, %v", line, err)
				}
				f := strings.Fields(line)
				if len(f) == 1 && f[0] == "ready" {
					break
				}
				tid, err := strconv.Atoi(f[0])
				if len(f) != 3 || err != nil {
					t.Fatalf("namespaced python said %q", line)
				}
				wants[tid] = want{f[1], f[2]}
			}
			// unshare forked the python: its only child.
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", proc.Cmd.Process.Pid, proc.Cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("children of unshare: %q", b)
			}
			// The host TID of each namespace-local one, read here from
			// NSpid, and each thread asleep in its time.sleep.
			hostOf := map[int]int{}
			tids, err := process.Threads(pid)
			if err != nil {
				t.Fatal(err)
			}
			for _, tid := range tids {
				st, err := process.TaskStatus(pid, tid)
				if err != nil || len(st.NSpid) < 2 {
					t.Fatalf("thread %d: NSpid %v, %v; want a nested namespace", tid, st.NSpid, err)
				}
				hostOf[st.NSpid[len(st.NSpid)-1]] = tid
				if st.NSpid[0] == st.NSpid[len(st.NSpid)-1] {
					t.Fatalf("thread %d: NSpid %v: the same TID in both namespaces proves nothing", tid, st.NSpid)
				}
			}
			waitAsleep(t, pid, tids)

			d, err := Take(pid)
			if err != nil {
				t.Fatal(err)
			}
			if d.Note != "" {
				t.Errorf("note: %s", d.Note)
			}
			byTID := map[int]Thread{}
			for _, th := range d.Threads {
				byTID[th.TID] = th
			}
			for local, w := range wants {
				host, ok := hostOf[local]
				if !ok {
					t.Fatalf("no host TID for namespace TID %d (%v)", local, hostOf)
				}
				th := byTID[host]
				var fns []string
				for _, f := range th.Python {
					fns = append(fns, f.Name)
				}
				t.Logf("thread %d (local %d) %q: %v", host, local, th.Name, fns)
				if len(fns) == 0 || fns[0] != w.fn {
					t.Errorf("thread %d (local %d): Python frames %v, want %s innermost", host, local, fns, w.fn)
				}
				if th.Name != w.name {
					t.Errorf("thread %d (local %d): name %q, want %q", host, local, th.Name, w.name)
				}
			}
		})
	}
}

// waitAsleep waits until every thread tids of pid is blocked: "ready" comes
// just before the main thread's sleep.
func waitAsleep(t *testing.T, pid int, tids []int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		asleep := 0
		for _, tid := range tids {
			if st, err := process.State(pid, tid); err == nil && st == 'S' {
				asleep++
			}
		}
		if asleep == len(tids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d threads asleep after 20 s", asleep, len(tids))
		}
	}
}
