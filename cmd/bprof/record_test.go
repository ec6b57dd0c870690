package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/process"
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
		left := newPrograms(t, before)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("BPF programs %v appeared during record and are still loaded 3 s after it returned", left)
		}
	}
}

// newPrograms lists bprof's programs loaded now that were not in before and
// that no other process holds: those another bprof on the machine loaded
// meanwhile (a developer's, a benchmark's) are its own, but one that no
// process holds any more was left behind.
func newPrograms(t *testing.T, before map[ebpf.ProgramID]bool) []ebpf.ProgramID {
	t.Helper()
	held := programsHeldByOthers()
	var left []ebpf.ProgramID
	for id := range bprofPrograms(t) {
		if !before[id] && !held[id] {
			left = append(left, id)
		}
	}
	return left
}

// programsHeldByOthers is the programs that a process other than this one
// holds through an fd: the program's own, or a link's.
func programsHeldByOthers() map[ebpf.ProgramID]bool {
	held := map[ebpf.ProgramID]bool{}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd")
	self := fmt.Sprintf("/proc/%d/fd", os.Getpid())
	for _, dir := range procs {
		if dir == self {
			continue
		}
		fds, _ := os.ReadDir(dir)
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err != nil || !strings.Contains(target, "bpf-prog") && !strings.Contains(target, "bpf_link") {
				continue
			}
			info, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "fdinfo", fd.Name()))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(info), "\n") {
				if v, ok := strings.CutPrefix(line, "prog_id:"); ok {
					if id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
						held[ebpf.ProgramID(id)] = true
					}
				}
			}
		}
	}
	return held
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
	cmd := start(t, bin) // runs until killed: no need to wait for it
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
	// 5 s at 400 Hz is 2,000 samples with a whole CPU; a loaded machine
	// gives fewer, and the share's tolerance widens with them.
	if total < 200 {
		t.Fatalf("only %d samples in 5 s at 400 Hz", total)
	}
	// alpha : beta = 2 : 1 by the program's own clock. Each sample falls in
	// one or the other with p = 2/3: the share's σ is √(p(1−p)/n); allow 4σ,
	// and never less than 0.05.
	share := float64(alpha) / float64(alpha+beta)
	tol := math.Max(0.05, 4*math.Sqrt(2.0/9/float64(alpha+beta)))
	if math.Abs(share-2.0/3) > tol {
		t.Errorf("alpha's share of alpha+beta = %.3f, want 0.667 ± %.3f", share, tol)
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

// signalWriter collects what is written to it and closes ready the first
// time that holds want.
type signalWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	want  string
	ready chan struct{}
}

func newSignalWriter(want string) *signalWriter {
	return &signalWriter{want: want, ready: make(chan struct{})}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if w.want != "" && strings.Contains(w.buf.String(), w.want) {
		close(w.ready)
		w.want = ""
	}
	return n, err
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitReady waits for the line that says recording has begun.
func waitReady(t *testing.T, w *signalWriter) {
	t.Helper()
	select {
	case <-w.ready:
	case <-time.After(time.Minute):
		t.Fatalf("no %q within a minute:\n%s", w.want, w.String())
	}
}

// TestRecordTargetExits: a target that exits half-way still gets its
// profile, and record ends soon after it. The target starts its 2 s of work
// only once record says it is recording.
func TestRecordTargetExits(t *testing.T) {
	testenv.RequireRoot(t)
	// It says "ready" before record starts: python3 may be a shim (pyenv's
	// is a shell script that execs Python under the same PID), whose CPU
	// time, sampled when record started before the exec, once added 8
	// samples to a 7.6 tolerance.
	proc := testenv.Start(t, "python3", "-c", "import sys, time\nprint('ready', flush=True)\nsys.stdin.readline()\nc0 = time.process_time()\nend = time.time() + 2\nwhile time.time() < end: pass\nprint(time.process_time() - c0, flush=True)")
	if line, err := proc.Stdout.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("target said %q (%v), want ready", line, err)
	}
	out := filepath.Join(t.TempDir(), "out.pb.gz")
	stderr := newSignalWriter("bprof: recording")
	code := make(chan int, 1)
	var exited time.Time
	go func() {
		code <- mainWith([]string{"record", "-o", out, "-p", strconv.Itoa(proc.Cmd.Process.Pid), "-d", "2m"}, io.Discard, stderr)
	}()
	waitReady(t, stderr)
	proc.Stdin.Write([]byte("go\n"))
	ranc := make(chan float64, 1)
	go func() {
		line, _ := proc.Stdout.ReadString('\n')
		ran, _ := strconv.ParseFloat(strings.TrimSpace(line), 64)
		ranc <- ran
		proc.Cmd.Wait()
		exited = time.Now()
	}()
	if c := <-code; c != 0 {
		t.Fatalf("bprof record: exit %d\n%s", c, stderr.String())
	}
	if took := time.Since(exited); !exited.IsZero() && took > 5*time.Second {
		t.Errorf("record ended %s after its only target exited", took)
	}
	if !strings.Contains(stderr.String(), "exited") {
		t.Errorf("stderr does not say the target exited:\n%s", stderr.String())
	}
	p := readProfile(t, out)
	var n int64
	for _, s := range p.Sample {
		n += s.Value[0]
	}
	// The target's CPU time over its 2 s, by its own clock, makes about
	// 100 samples a second; the count is binomial (see TestRecordRate).
	ran := <-ranc
	want, tol := expectedSamples(ran, 2)
	t.Logf("%d samples from a target that ran %.2f s of CPU in 2 s: want %.0f ± %.1f", n, ran, want, tol)
	if math.Abs(float64(n)-want) > tol {
		t.Errorf("%d samples from a target that ran %.2f s of CPU, want %.0f ± %.1f", n, ran, want, tol)
	}
}

// expectedSamples is how many 100 Hz samples a thread that ran for ran
// seconds of a span of span seconds gets, and the tolerance: a cpu-clock tick
// lands on it with the probability q that it is on that CPU, so over the
// span's ticks the count is binomial, σ = √(ticks·q·(1−q)); 4σ, and a tick
// more at each end for the phase.
func expectedSamples(ran, span float64) (want, tol float64) {
	ticks := span * 100
	q := math.Min(1, ran/span)
	return ran * 100, 4*math.Sqrt(ticks*q*(1-q)) + 2
}

// readProfile reads and checks a pprof file.
func readProfile(t *testing.T, path string) *profile.Profile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRecordRate: samples per second of CPU time of a busy thread match the
// rate. The run time is read (schedstat, in nanoseconds) right after the
// target is added and right after sampling stops, so the window is the
// sampled one.
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
	ran0, _ := process.RunTime(pid, pid)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := sess.Run(ctx); err != nil {
		t.Fatal(err)
	}
	ran1, _ := process.RunTime(pid, pid)
	span := time.Since(began)
	p, _, _ := sess.Cut()
	var n int64
	for _, s := range p.Sample {
		n += s.Value[0]
	}
	ran := time.Duration(ran1 - ran0)
	want, tol := expectedSamples(ran.Seconds(), span.Seconds())
	t.Logf("%d samples over %s of CPU time in %s: want %.0f ± %.1f", n, ran, span, want, tol)
	if math.Abs(float64(n)-want) > tol {
		t.Errorf("%d samples over %s of CPU time, want %.0f ± %.1f", n, ran, want, tol)
	}
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
	stderr := newSignalWriter("bprof: recording")
	rec.Stderr = stderr
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	// Its own programs: other developers' tests load bprof programs on this
	// machine too.
	progs := waitForOwnPrograms(t, rec.Process.Pid)
	waitReady(t, stderr)
	ran0, _ := process.RunTime(target.Process.Pid, target.Process.Pid)
	began := time.Now()
	time.Sleep(1500 * time.Millisecond) // what is recorded, not a wait for readiness
	ran1, _ := process.RunTime(target.Process.Pid, target.Process.Pid)
	span := time.Since(began)
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
	// Samples from "recording" to the signal; record also samples until it
	// has stopped, a few ticks more.
	want, tol := expectedSamples(float64(ran1-ran0)/1e9, span.Seconds())
	t.Logf("%d samples, %.0f ± %.1f expected from the target's run time before the signal", n, want, tol)
	if float64(n) < want-tol {
		t.Errorf("%d samples in %s of a busy loop that ran %s, want at least %.0f", n, span, time.Duration(ran1-ran0), want-tol)
	}
	assertProgramsGone(t, progs)
}
