package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/profiler"
	"github.com/bprof/bprof/pkg/sampler"
	"github.com/cilium/ebpf"
	"github.com/google/pprof/profile"
)

// record runs `bprof record` in this process and returns the profile and stderr.
func record(t *testing.T, args ...string) (*profile.Profile, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.pb.gz")
	var stdout, stderr bytes.Buffer
	code := mainWith(append([]string{"record", "-o", out}, args...), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("bprof record %v: exit %d: %s", args, code, stderr.String())
	}
	// bprof pins nothing: a program outlives record only through an fd of
	// this process. (The kernel's list of bprof programs also holds those
	// of other tests running on the machine at the same time.)
	assertNoBPFLeft(t)
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

// assertNoBPFLeft fails if this process still holds a BPF program, map or
// link, or a perf event: after record returns, nothing of bprof's may stay
// attached. (Looking at fds rather than the kernel's program list keeps the
// check true while other bprof tests run on the machine.)
func assertNoBPFLeft(t *testing.T) {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		target, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err != nil {
			continue
		}
		for _, kind := range []string{"bpf-prog", "bpf-map", "bpf_link", "bpf-link", "[perf_event]", "bpf_ringbuf"} {
			if strings.Contains(target, kind) {
				t.Errorf("fd %s (%s) still open after record returned", fd.Name(), target)
			}
		}
	}
}

// assertNoNewPrograms fails if a bprof program not in before is still loaded.
// The kernel frees a detached program after an RCU grace period: it gets 3 s.
func assertNoNewPrograms(t *testing.T, before map[ebpf.ProgramID]bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var left []ebpf.ProgramID
		for id := range bprofPrograms(t) {
			if !before[id] {
				left = append(left, id)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("BPF programs %v appeared during record and are still loaded 3 s after it returned", left)
		}
	}
}

// waitForPrograms waits until bprof has loaded programs that were not in
// before: it is sampling from then on. Start-up (the verifier checking the
// programs, kallsyms, unwind tables) takes a second or so, more under load.
func waitForPrograms(t *testing.T, before map[ebpf.ProgramID]bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for id := range bprofPrograms(t) {
			if !before[id] {
				return
			}
		}
	}
	t.Fatal("bprof loaded no BPF program within 20 s")
}

// bprofPrograms lists the IDs of bprof's programs loaded in the kernel, with
// the cilium/ebpf API. `make test` runs packages one at a time (-p 1), so a
// program that appears during a test is that test's.
func bprofPrograms(t *testing.T) map[ebpf.ProgramID]bool {
	t.Helper()
	ids := map[ebpf.ProgramID]bool{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return ids
		}
		id = next
		prog, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := prog.Info()
		prog.Close()
		if err == nil && strings.HasPrefix(info.Name, sampler.ProgramPrefix) {
			ids[id] = true
		}
	}
}

func buildC(t *testing.T, src string, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(src), ".c"))
	args := append([]string{"-o", bin, src}, flags...)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, out)
	}
	return bin
}

func start(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	return testenv.Start(t, name, args...).Cmd
}

func leafName(s *profile.Sample) string {
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function != nil {
				return l.Function.Name
			}
		}
	}
	return ""
}

func stackHas(s *profile.Sample, name string) bool {
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function != nil && l.Function.Name == name {
				return true
			}
		}
	}
	return false
}

// TestRecordNativeSplit checks the CPU split of a C program, its full stacks
// and the kernel frames of its syscall-heavy function.
func TestRecordNativeSplit(t *testing.T) {
	testenv.RequireRoot(t)
	bin := buildC(t, "../../testdata/native/split.c", "-O1", "-fno-omit-frame-pointer")
	cmd := start(t, bin)
	time.Sleep(200 * time.Millisecond)
	p, _ := record(t, "-p", strconv.Itoa(cmd.Process.Pid), "-d", "5s", "-r", "400")

	var alpha, beta, sys, total, withMain, onTop, kernelUnderSys int64
	for _, s := range p.Sample {
		n := s.Value[0]
		total += n
		switch {
		case stackHas(s, "alpha"):
			alpha += n
		case stackHas(s, "beta"):
			beta += n
		case stackHas(s, "sys_heavy"):
			sys += n
			if s.Location[0].Mapping.File == export.KernelMapping {
				kernelUnderSys += n
			}
		}
		if leaf := leafName(s); leaf == "alpha" || leaf == "beta" {
			onTop += n
			if stackHas(s, "main") {
				withMain += n
			}
		}
	}
	t.Logf("samples %d: alpha %d, beta %d, sys_heavy %d (%d in the kernel); alpha/beta on top %d, of which reach main %d",
		total, alpha, beta, sys, kernelUnderSys, onTop, withMain)
	if sys < total/8 {
		t.Errorf("sys_heavy in %d of %d samples, want about a quarter", sys, total)
	}
	if total < 1000 {
		t.Fatalf("only %d samples in 5 s at 400 Hz", total)
	}
	// alpha : beta = 2 : 1 by the program's own clock.
	share := float64(alpha) / float64(alpha+beta)
	if share < 2.0/3-0.05 || share > 2.0/3+0.05 {
		t.Errorf("alpha's share of alpha+beta = %.3f, want 0.667 ± 0.05", share)
	}
	if onTop < (alpha+beta)/2 {
		t.Errorf("alpha/beta on top in %d of %d samples", onTop, alpha+beta)
	}
	if withMain < onTop*95/100 {
		t.Errorf("only %d of %d alpha/beta samples have a stack down to main", withMain, onTop)
	}
	if kernelUnderSys < sys/2 {
		t.Errorf("only %d of %d sys_heavy samples have kernel frames on top", kernelUnderSys, sys)
	}
	// The kernel frames are named.
	names := map[string]bool{}
	for _, f := range p.Function {
		names[f.Name] = true
	}
	if !names["do_syscall_64"] && !names["entry_SYSCALL_64"] && !names["entry_SYSCALL_64_after_hwframe"] {
		t.Errorf("no syscall entry frame among the kernel frames")
	}
}

// TestRecordTargetExits: a target that exits half-way still gets its profile.
func TestRecordTargetExits(t *testing.T) {
	testenv.RequireRoot(t)
	cmd := start(t, "python3", "-c", "import time\nend = time.time() + 2\nwhile time.time() < end: pass")
	began := time.Now()
	p, stderr := record(t, "-p", strconv.Itoa(cmd.Process.Pid), "-d", "20s")
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("record took %s after its only target exited", took)
	}
	if !strings.Contains(stderr, "exited") {
		t.Errorf("stderr does not say the target exited:\n%s", stderr)
	}
	var n int64
	for _, s := range p.Sample {
		n += s.Value[0]
	}
	if n < 50 {
		t.Errorf("%d samples from a target busy for ~2 s", n)
	}
}

// TestRecordRate: samples per second of CPU time per busy thread match the
// rate. The CPU time is read right after the target is added and right after
// sampling stops, so the window is the sampled one.
func TestRecordRate(t *testing.T) {
	testenv.RequireRoot(t)
	cmd := start(t, "sh", "-c", "while :; do :; done")
	pid := cmd.Process.Pid
	sess, err := profiler.NewSession(profiler.Options{Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Add(pid); err != nil {
		t.Fatal(err)
	}
	cpu0 := taskCPU(t, pid)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := sess.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cpu := taskCPU(t, pid) - cpu0
	p, _, _ := sess.Cut()
	var n int64
	for _, s := range p.Sample {
		n += s.Value[0]
	}
	rate := float64(n) / cpu.Seconds()
	t.Logf("%d samples over %s of CPU time: %.1f per second", n, cpu, rate)
	if cpu < 3*time.Second {
		testenv.Skip(t, "the target got less than 3 s of CPU in 4 s: machine too busy to measure")
	}
	if rate < 95 || rate > 105 {
		t.Errorf("%.1f samples per CPU second, want 100 ± 5%%", rate)
	}
}

// taskCPU is the CPU time a single-threaded process has used (utime+stime).
func taskCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

func TestRecordErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"record", "-p", "999999999"}, "no process with PID 999999999"},
		{[]string{"record"}, "no target"},
		{[]string{"record", "-p", "1", "-d", "soon"}, "duration"},
		{[]string{"record", "-p", "1", "-o", "/nonexistent/dir/x.pb.gz"}, "not writable"},
	} {
		var stdout, stderr bytes.Buffer
		if code := mainWith(tc.args, &stdout, &stderr); code == 0 {
			t.Errorf("%v: exit 0", tc.args)
		}
		msg := strings.TrimSpace(stderr.String())
		if !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") > 0 {
			t.Errorf("%v: stderr %q, want one line containing %q", tc.args, msg, tc.want)
		}
	}
}

// TestRecordPythonThreads: a multi-threaded CPython target shows libpython's
// own symbols, the right pid, and one thread_id per busy thread.
func TestRecordPythonThreads(t *testing.T) {
	testenv.RequireRoot(t)
	python := testenv.RequireCommand(t, "python3")
	proc := testenv.Start(t, python, "../../testdata/python/depth.py", "8", "30", "3")
	proc.Stdout.ReadString('\n') // "ready"
	pid := proc.Cmd.Process.Pid
	p, _ := record(t, "-p", strconv.Itoa(pid), "-d", "3s")

	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	real := map[int64]bool{}
	for _, e := range tasks {
		tid, _ := strconv.ParseInt(e.Name(), 10, 64)
		real[tid] = true
	}
	threads := map[int64]int64{}
	libpython := false
	for _, s := range p.Sample {
		if got := s.NumLabel["pid"]; len(got) != 1 || got[0] != int64(pid) {
			t.Fatalf("sample pid label %v, want %d", got, pid)
		}
		if len(s.Label["thread_name"]) != 1 {
			t.Fatalf("sample without thread_name: %v", s.Label)
		}
		threads[s.NumLabel["thread_id"][0]] += s.Value[0]
		for _, loc := range s.Location {
			if strings.Contains(filepath.Base(loc.Mapping.File), "python") && loc.Mapping.File != export.PythonMapping &&
				!strings.Contains(loc.Line[0].Function.Name, "+0x") {
				libpython = true
			}
		}
	}
	busy := 0
	for tid, n := range threads {
		if !real[tid] {
			t.Errorf("thread_id %d is not a thread of %d", tid, pid)
		}
		if n > 30 { // the GIL shares one CPU's worth among the three
			busy++
		}
	}
	if busy != 3 {
		t.Errorf("%d busy threads in the profile (%v), want 3", busy, threads)
	}
	if !libpython {
		t.Error("no named frame from the interpreter's own file (libpython or python3)")
	}
}

// TestRecordSIGINT: the real binary stopped by Ctrl-C writes its profile,
// exits 0 and leaves no BPF program loaded.
func TestRecordSIGINT(t *testing.T) {
	testenv.RequireRoot(t)
	bin := filepath.Join(t.TempDir(), "bprof")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	target := start(t, "sh", "-c", "while :; do :; done")
	out := filepath.Join(t.TempDir(), "int.pb.gz")
	rec := exec.Command(bin, "record", "-p", strconv.Itoa(target.Process.Pid), "-o", out)
	var stderr screenLog
	rec.Stderr = &stderr
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	// Its own programs: other developers' tests load bprof programs on this
	// machine too. Sampling has started when bprof says it is recording.
	progs := waitForOwnPrograms(t, rec.Process.Pid)
	stderr.waitFor(t, 0, regexp.MustCompile(`bprof: recording pid \d+ at 100 Hz`), 30*time.Second)
	time.Sleep(1500 * time.Millisecond)
	rec.Process.Signal(os.Interrupt)
	if err := rec.Wait(); err != nil {
		t.Fatalf("record after Ctrl-C: %v\n%s", err, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("no profile after Ctrl-C: %v\n%s", err, stderr.String())
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, s := range p.Sample {
		n += s.Value[0]
	}
	if n < 50 {
		t.Errorf("%d samples in ~1.5 s of a busy loop", n)
	}
	assertProgramsGone(t, progs)
}
