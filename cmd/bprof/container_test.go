package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/process"
	"github.com/google/pprof/profile"
)

// chrootRoot returns a Debian root with a CPython 3.11+ in it (the CI builds
// them under /var/cache/bprof/chroots).
func chrootRoot(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"trixie", "sid"} {
		root := filepath.Join("/var/cache/bprof/chroots", name)
		if _, err := os.Stat(filepath.Join(root, "usr/bin/python3")); err == nil {
			return root
		}
	}
	testenv.Skip(t, "no Debian chroot with python3 under /var/cache/bprof/chroots (built by CI)")
	return ""
}

// containerdCgroup makes a cgroup v2 group named as containerd names a
// container's (cri-containerd-<64 hex>.scope) and removes it when the test
// ends. It returns the group's directory and the container ID.
func containerdCgroup(t *testing.T) (string, string) {
	t.Helper()
	const unified = "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(unified, "cgroup.procs")); err != nil {
		testenv.Skip(t, "no cgroup v2 hierarchy at "+unified)
	}
	b := make([]byte, 32)
	rand.Read(b)
	id := hex.EncodeToString(b)
	parent := filepath.Join(unified, fmt.Sprintf("bprof-test-%d", os.Getpid()))
	dir := filepath.Join(parent, "cri-containerd-"+id+".scope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("make cgroup: %v", err)
	}
	t.Cleanup(func() {
		// The group empties once its process is reaped; rmdir says EBUSY until then.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
				break
			}
		}
		os.Remove(parent)
	})
	return dir, id
}

// startInContainer runs script with the chroot's python3 as PID 1 of a new
// PID namespace, in the cgroup dir, and returns its host PID once it has
// printed "ready".
func startInContainer(t *testing.T, root, cgroup, script string) int {
	t.Helper()
	p := testenv.Start(t, "sh", "-c", `echo $$ > "$1/cgroup.procs" && exec unshare --pid --fork --kill-child --mount-proc chroot "$2" python3 -c "$3"`,
		"sh", cgroup, root, script)
	line, err := p.Stdout.ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("namespaced python: %q, %v", line, err)
	}
	// unshare forked the python: its only child.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.Cmd.Process.Pid, p.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("children of unshare: %q", b)
	}
	return pid
}

// The namespaced process's threads: one parked in a function for the whole
// recording (it never runs, so its Python frames can only come from the
// blocked-at-start snapshot, matched through NSpid), and the main thread.
const parkedScript = `
import threading, time
started = threading.Event()
def parked_in_namespace():
    started.set()
    time.sleep(1000)
threading.Thread(target=parked_in_namespace, daemon=True).start()
started.wait()
print("ready", flush=True)
def main_waits():
    time.sleep(1000)
main_waits()
`

// TestContainerRecord: a CPython in its own PID namespace, chroot and a
// containerd-named cgroup is recorded with container_id on its samples, and
// the thread blocked all through has its Python frames from the snapshot,
// though its native_thread_id is namespace-local.
func TestContainerRecord(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "unshare")
	root := chrootRoot(t)
	cg, id := containerdCgroup(t)
	pid := startInContainer(t, root, cg, parkedScript)
	if st, err := process.TaskStatus(pid, pid); err != nil || len(st.NSpid) < 2 || st.NSpid[len(st.NSpid)-1] != 1 {
		t.Fatalf("python %d: NSpid %v, %v; want it PID 1 of a nested namespace", pid, st.NSpid, err)
	}

	out := filepath.Join(t.TempDir(), "p.pb.gz")
	var stdout, stderr bytes.Buffer
	if code := mainWith([]string{"record", "-p", strconv.Itoa(pid), "-d", "1", "-o", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("bprof record: exit %d\n%s", code, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	var parked bool
	for _, s := range p.Sample {
		if got := s.Label["container_id"]; len(got) != 1 || got[0] != id {
			t.Errorf("sample %v: container_id %v, want %s", s.Label, got, id)
		}
		if len(s.Label["pod_uid"]) != 0 || len(s.Label["namespace"]) != 0 {
			t.Errorf("sample %v: pod labels outside Kubernetes", s.Label)
		}
		parked = parked || stackHas(s, "parked_in_namespace") && stackHas(s, "[off-cpu: sleep]")
	}
	if !parked {
		t.Errorf("no wall sample of the parked thread with its Python frame parked_in_namespace: the snapshot did not match the namespaced thread\n%s", stderr.String())
	}
}

// TestContainerAgentBatch: the agent's batch of a process in a container
// carries container_id in the sidecar, the pprof comments and every sample.
func TestContainerAgentBatch(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "unshare")
	root := chrootRoot(t)
	cg, id := containerdCgroup(t)
	pid := startInContainer(t, root, cg, parkedScript)
	dir := t.TempDir()
	// Stopped as soon as it has started: the final batch holds the wall
	// time of the threads parked all along, which is enough.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log logBuffer
	done := make(chan error, 1)
	go func() { done <- runAgentContext(ctx, []string{"-p", strconv.Itoa(pid), "--output-dir", dir}, &log) }()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(log.String(), "agent started"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("agent not started within 60 s:\n%s", log.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("agent: %v\n%s", err, log.String())
	}
	scs, ps := readBatches(t, dir)
	if len(scs) == 0 {
		t.Fatalf("no batch\n%s", log.String())
	}
	for i, sc := range scs {
		if got := sc["labels"].(map[string]any)["container_id"]; got != id {
			t.Errorf("sidecar labels %v, want container_id %s", sc["labels"], id)
		}
		found := false
		for _, c := range ps[i].Comments {
			found = found || c == "container_id="+id
		}
		if !found {
			t.Errorf("pprof comments %v, want container_id=%s", ps[i].Comments, id)
		}
		for _, s := range ps[i].Sample {
			if got := s.Label["container_id"]; len(got) != 1 || got[0] != id {
				t.Errorf("sample container_id %v, want %s", got, id)
			}
		}
	}
}
