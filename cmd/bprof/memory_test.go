package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/memory"
	"github.com/google/pprof/profile"
)

// sidRoot is sid's Debian root with CPython 3.14 (.ci/setup-chroots.sh).
func sidRoot(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BPROF_CHROOTS")
	if dir == "" {
		dir = "/var/cache/bprof/chroots"
	}
	root := filepath.Join(dir, "sid")
	if _, err := os.Stat(filepath.Join(root, "usr/bin/python3.14")); err != nil {
		testenv.Skip(t, "no CPython 3.14 in "+root+": run .ci/setup-chroots.sh")
	}
	return root
}

// startSid runs testdata/python/memory.py with sid's python3 in its root,
// through prefix (a command that ends by running the rest, or none) with env
// added, and waits for "ready".
func startSid(t *testing.T, prefix []string, env []string, args ...string) *testenv.Process {
	t.Helper()
	root := sidRoot(t)
	src, err := os.ReadFile("../../testdata/python/memory.py")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "tmp", "bprof-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.py"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	argv := append(append(append([]string{}, prefix...), "chroot", root, "/usr/bin/env"), env...)
	argv = append(append(argv, "python3", "/tmp/bprof-test/memory.py"), args...)
	proc := testenv.Start(t, argv[0], argv[1:]...)
	if line, err := proc.Stdout.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("memory.py in sid: want ready, got %q (%v)", line, err)
	}
	return proc
}

// pythonPID is the PID of the workload's python: the last process of the
// chain that started it (unshare, chroot and env exec, so it is the same).
func pythonPID(proc *testenv.Process) int { return proc.Cmd.Process.Pid }

func sampleTypes(p *profile.Profile) string {
	var ts []string
	for _, st := range p.SampleType {
		ts = append(ts, st.Type)
	}
	return strings.Join(ts, " ")
}

func sumUnder(p *profile.Profile, typ, fn string) int64 {
	i := -1
	for j, st := range p.SampleType {
		if st.Type == typ {
			i = j
		}
	}
	var v int64
	for _, s := range p.Sample {
		if i >= 0 && stackHas(s, fn) {
			v += s.Value[i]
		}
	}
	return v
}

// recordMemory is record with a longer wait for the kernel to free the
// programs: uprobe programs run under RCU tasks trace, so the kernel frees a
// detached one only after that grace period, which takes seconds on a busy
// machine (the fds are checked at once, as record does).
func recordMemory(t *testing.T, args ...string) (*profile.Profile, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.pb.gz")
	var stdout, stderr bytes.Buffer
	before := bprofPrograms(t)
	code := mainWith(append([]string{"record", "-o", out}, args...), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("bprof record %v: exit %d: %s", args, code, stderr.String())
	}
	assertNoBPFLeft(t)
	t0 := time.Now()
	for {
		left := newPrograms(t, before)
		if len(left) == 0 {
			break
		}
		if time.Since(t0) > 30*time.Second {
			t.Fatalf("BPF programs %v appeared during record and are still loaded 30 s after it returned", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(t0); d > time.Second {
		t.Logf("the kernel freed record's programs %s after it returned", d.Round(100*time.Millisecond))
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("parse %s: %v", out, err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	return p, stderr.String()
}

// TestRecordMemory: record --memory on CPython 3.14 attaches by PEP 768 and
// writes the memory types after cpu and wall, in the same profile, and says
// how many allocations it sampled and dropped.
func TestRecordMemory(t *testing.T) {
	testenv.RequireRoot(t)
	proc := startSid(t, nil, nil)
	p, stderr := recordMemory(t, "-p", strconv.Itoa(pythonPID(proc)), "--memory", "--alloc-sample-bytes", "256KiB", "-d", "3s")
	if got, want := sampleTypes(p), "samples cpu wall alloc_objects alloc_space inuse_objects inuse_space"; got != want {
		t.Errorf("sample types %q, want %q", got, want)
	}
	if p.DefaultSampleType != "cpu" {
		t.Errorf("default sample type %q, want cpu", p.DefaultSampleType)
	}
	m := regexp.MustCompile(`memory: sampled (\d+) allocations, (\d+) dropped`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no memory line in stderr:\n%s", stderr)
	}
	sampled, _ := strconv.Atoi(m[1])
	dropped, _ := strconv.Atoi(m[2])
	if sampled < 1000 || dropped > sampled/100 {
		t.Errorf("%d allocations sampled, %d dropped", sampled, dropped)
	}
	mid, all := sumUnder(p, "alloc_space", "alloc_mid"), sumUnder(p, "alloc_space", "<module>")
	t.Logf("%s; alloc_mid %.0f MB of %.0f MB", strings.TrimSpace(m[0]), float64(mid)/1e6, float64(all)/1e6)
	if mid == 0 || all == 0 || float64(mid) < 0.2*float64(all) || float64(mid) > 0.4*float64(all) {
		t.Errorf("alloc_space: %d under alloc_mid of %d, want ~30%%", mid, all)
	}
	// The sampler stays loaded, off: allocations pass through.
	s, err := memory.Find(pythonPID(proc))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c, err := s.Read(); err != nil || c.Enabled {
		t.Errorf("sampler after record: %+v, %v; want it off", c, err)
	}
}

// TestRecordMemoryErrors: each way --memory cannot work is one line on
// stderr and a failed exit, never an empty memory profile.
func TestRecordMemoryErrors(t *testing.T) {
	testenv.RequireRoot(t)
	py311 := filepath.Join(os.Getenv("HOME"), ".pyenv", "versions", "3.11.7", "bin", "python3")
	if _, err := os.Stat(py311); err != nil {
		testenv.Skip(t, "needs pyenv's 3.11.7")
	}
	old := testenv.Start(t, py311, "-c", "print('ready', flush=True)\nwhile True: x = bytes(1000)")
	old.Stdout.ReadString('\n')
	sleeper := start(t, "sleep", "60")
	noRemote := startSid(t, nil, []string{"PYTHON_DISABLE_REMOTE_DEBUG=1"})
	// A target whose /tmp, /dev/shm and /var/tmp are read-only: its own
	// mount namespace. (The library may be in its /tmp already, from an
	// earlier run: the loader script still has nowhere to go.)
	root := sidRoot(t)
	var ro string
	for _, d := range []string{"tmp", "dev/shm", "var/tmp"} {
		if _, err := os.Stat(filepath.Join(root, d)); err == nil {
			ro += fmt.Sprintf("mount --bind %[1]s/%[2]s %[1]s/%[2]s && mount -o remount,bind,ro %[1]s/%[2]s && ", root, d)
		}
	}
	ro += "exec \"$@\""
	readOnly := startSid(t, []string{"unshare", "-m", "--propagation", "private", "sh", "-c", ro, "sh"}, nil)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad sample size", []string{"-p", strconv.Itoa(sleeper.Process.Pid), "--memory", "--alloc-sample-bytes", "lots"}, "--alloc-sample-bytes"},
		{"python 3.11", []string{"-p", strconv.Itoa(old.Cmd.Process.Pid), "--memory"}, "use bprof_client"},
		{"not python", []string{"-p", strconv.Itoa(sleeper.Process.Pid), "--memory"}, "does not run a CPython"},
		{"remote debugging off", []string{"-p", strconv.Itoa(pythonPID(noRemote)), "--memory"}, "remote debugging is disabled"},
		{"read-only tmp", []string{"-p", strconv.Itoa(pythonPID(readOnly)), "--memory"}, "read-only file system"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			out := filepath.Join(t.TempDir(), "x.pb.gz")
			if code := mainWith(append([]string{"record", "-d", "1s", "-o", out}, tc.args...), &stdout, &stderr); code == 0 {
				t.Errorf("exit 0")
			}
			msg := strings.TrimSpace(stderr.String())
			if !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") > 0 {
				t.Errorf("stderr %q, want one line containing %q", msg, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a profile was written")
			}
			assertNoBPFLeft(t)
		})
	}
}

// TestRecordMemoryKilled: a record killed (SIGKILL) while the target is
// sampled leaves the target working; the next record takes the sampler over.
func TestRecordMemoryKilled(t *testing.T) {
	testenv.RequireRoot(t)
	proc := startSid(t, nil, nil)
	pid := strconv.Itoa(pythonPID(proc))
	bin := filepath.Join(t.TempDir(), "bprof")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rec := exec.Command(bin, "record", "-p", pid, "--memory", "-o", filepath.Join(t.TempDir(), "k.pb.gz"))
	var stderr bytes.Buffer
	rec.Stderr = &stderr
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until sampling is on, then kill.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if s, err := memory.Find(pythonPID(proc)); err == nil {
			c, _ := s.Read()
			s.Close()
			if c.Enabled && c.Sampled > 100 {
				break
			}
		}
		if time.Now().After(deadline) {
			rec.Process.Kill()
			t.Fatalf("sampling never started:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	rec.Process.Signal(syscall.SIGKILL)
	rec.Wait()
	time.Sleep(500 * time.Millisecond)
	if ans := strings.TrimSpace(mustCommand(t, proc, "truth")); !strings.HasPrefix(ans, "{") {
		t.Fatalf("target after the kill: %q", ans)
	}
	p, _ := recordMemory(t, "-p", pid, "--memory", "-d", "2s")
	if sumUnder(p, "alloc_space", "alloc_big") == 0 {
		t.Error("second record: no allocation sampled under alloc_big")
	}
}

func mustCommand(t *testing.T, proc *testenv.Process, line string) string {
	t.Helper()
	fmt.Fprintln(proc.Stdin, line)
	ans, err := proc.Stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("workload: %v", err)
	}
	return ans
}

// TestAgentMemoryClient: with --memory, a process registered through
// bprof_client (CPython 3.11) loads the sampler the agent offers; its
// batches carry alloc_* and inuse_* for its functions; stop() then start()
// again samples again.
func TestAgentMemoryClient(t *testing.T) {
	testenv.RequireRoot(t)
	py := filepath.Join(os.Getenv("HOME"), ".pyenv", "versions", "3.11.7", "bin", "python3")
	if _, err := os.Stat(py); err != nil {
		testenv.Skip(t, "needs pyenv's 3.11.7")
	}
	dir := t.TempDir()
	sock := filepath.Join(t.TempDir(), "bprof.sock")
	script := `
import os, time, warnings
warnings.simplefilter("error")
from bprof_client import Profiler, _alloc
print(os.getpid(), flush=True)
keep = []
def churn():
    for _ in range(100):
        x = bytes(1000)
def hold():
    keep.extend([bytes(65536) for _ in range(1024)])
p = Profiler(application_name="mem-app", period=45)
p.start()
assert _alloc.loaded(), "sampler not loaded"
hold()
end = time.time() + 1.5
while time.time() < end:
    churn()
p.stop()
# stop() then start() again: the same sampler, on again.
p.start()
end = time.time() + 1
while time.time() < end:
    churn()
p.stop()
print("stopped", flush=True)
`
	// The agent runs until the client is done (its start-up, the BPF
	// verifier, takes seconds on a loaded machine).
	ctx, cancel := context.WithCancel(context.Background())
	var agentLog bytes.Buffer
	agentErr := make(chan error, 1)
	go func() {
		agentErr <- runAgentContext(ctx, []string{"--listen", sock, "--output-dir", dir, "--memory", "--alloc-sample-bytes", "64KiB"}, &agentLog)
	}()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
	}
	cmd := exec.Command(py, "-c", script)
	cmd.Env = append(os.Environ(), "BPROF_SOCKET="+sock, "PYTHONPATH="+filepath.Join("..", "..", "python"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		out = append(out, []byte(err.Error())...)
	}
	cancel()
	if err := <-agentErr; err != nil {
		t.Fatalf("agent: %v\n%s", err, agentLog.String())
	}
	log := agentLog.String()
	lines := strings.Fields(string(out))
	if len(lines) != 2 || lines[1] != "stopped" {
		t.Fatalf("python: %s\nagent log:\n%s", out, log)
	}
	_, ps := readBatches(t, dir)
	if len(ps) != 2 {
		t.Fatalf("%d batches, want 2 (one per start and stop)\n%s", len(ps), log)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].TimeNanos < ps[j].TimeNanos })
	if again := sumUnder(ps[1], "alloc_space", "churn"); again == 0 {
		t.Error("after stop() and start() again: no alloc_space under churn")
	}
	p := ps[0]
	if got, want := sampleTypes(p), "samples cpu wall alloc_objects alloc_space inuse_objects inuse_space"; got != want {
		t.Errorf("sample types %q, want %q", got, want)
	}
	churn, hold := sumUnder(p, "alloc_space", "churn"), sumUnder(p, "inuse_space", "hold")
	t.Logf("alloc_space under churn %.0f MB; inuse_space under hold %.1f MiB (64 MiB kept)", float64(churn)/1e6, float64(hold)/(1<<20))
	if churn == 0 {
		t.Error("no alloc_space under churn")
	}
	if hold < 54<<20 || hold > 74<<20 {
		t.Errorf("inuse_space under hold %.1f MiB, want 64 ± 15%%", float64(hold)/(1<<20))
	}
	if !strings.Contains(log, "memory profiles on") {
		t.Errorf("agent log has no 'memory profiles on':\n%s", log)
	}
}

// TestAgentMemoryAttach: agent -p PID --memory attaches to a CPython 3.14
// at start; its batches carry alloc_* and an inuse_* snapshot each, and a
// Pyroscope server gets a third upload per batch, memory, as a Go heap
// profile.
func TestAgentMemoryAttach(t *testing.T) {
	testenv.RequireRoot(t)
	proc := startSid(t, nil, nil)
	pid := pythonPID(proc)
	dir := t.TempDir()
	var mu sync.Mutex
	var memUploads []*profile.Profile
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := profile.Parse(r.Body)
		if err == nil && p.PeriodType != nil && p.PeriodType.Type == "space" {
			mu.Lock()
			memUploads = append(memUploads, p)
			mu.Unlock()
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var agentLog bytes.Buffer
	agentErr := make(chan error, 1)
	go func() {
		agentErr <- runAgentContext(ctx, []string{"-p", strconv.Itoa(pid), "--memory", "--period", "1s",
			"--output-dir", dir, "--upload-url", srv.URL}, &agentLog)
	}()
	// Until sampling is on (the agent's start-up takes seconds on a busy
	// machine), then two periods.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if s, err := memory.Find(pid); err == nil {
			c, _ := s.Read()
			s.Close()
			if c.Enabled {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			<-agentErr
			t.Fatalf("the agent did not turn sampling on:\n%s", agentLog.String())
		}
	}
	time.Sleep(2500 * time.Millisecond)
	cancel()
	if err := <-agentErr; err != nil {
		t.Fatalf("agent: %v\n%s", err, agentLog.String())
	}
	_, ps := readBatches(t, dir)
	withAlloc := 0
	for _, p := range ps {
		if sampleTypes(p) != "samples cpu wall alloc_objects alloc_space inuse_objects inuse_space" {
			t.Errorf("batch types %q", sampleTypes(p))
		}
		if sumUnder(p, "alloc_space", "alloc_mid") > 0 {
			withAlloc++
		}
	}
	if withAlloc < 2 {
		t.Errorf("%d of %d batches with alloc_space under alloc_mid, want 2 or more\n%s", withAlloc, len(ps), agentLog.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(memUploads) < 2 {
		t.Fatalf("%d memory uploads to Pyroscope, want one per batch with memory\n%s", len(memUploads), agentLog.String())
	}
	if got := sampleTypes(memUploads[0]); got != "alloc_objects alloc_space inuse_objects inuse_space" || memUploads[0].Period != 512<<10 {
		t.Errorf("memory upload: types %q, period %d", got, memUploads[0].Period)
	}
}
