package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/process"
	"github.com/google/pprof/profile"
)

func TestParseAgentFlags(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		check func(c *agentConfig) bool
	}{
		{[]string{"-p", "1", "--output-dir", "d"}, func(c *agentConfig) bool {
			return c.opts.Period == 45*time.Second && c.opts.UploadTimeout == 10*time.Second && c.opts.Rate == 100 &&
				c.outputDir == "d" && c.py.URL == "" && c.logFormat == "text" && c.logLevel == slog.LevelInfo
		}},
		{[]string{"-p", "1", "--output-dir", "d", "--log-level", "debug"}, func(c *agentConfig) bool { return c.logLevel == slog.LevelDebug }},
		{[]string{"-p", "1", "--output-dir", "d", "--log-level", "WARN"}, func(c *agentConfig) bool { return c.logLevel == slog.LevelWarn }},
		{[]string{"-p", "1", "-p", "2", "--upload-url", "http://h:4040", "--period", "3s", "--upload-timeout", "1.5",
			"--label", "env=prod", "--label", "team=a=b", "--spool-dir", "s", "--spool-max", "2MiB", "--application-name", "app",
			"--log-format", "json"}, func(c *agentConfig) bool {
			return len(c.opts.PIDs) == 2 && c.opts.Period == 3*time.Second && c.opts.UploadTimeout == 1500*time.Millisecond &&
				c.opts.Labels["env"] == "prod" && c.opts.Labels["team"] == "a=b" && c.py.SpoolDir == "s" &&
				c.py.SpoolMax == 2<<20 && c.opts.ApplicationName == "app" && c.logFormat == "json"
		}},
		{[]string{"--listen", "/run/x.sock", "--listen-group", "bprof", "--output-dir", "d"}, func(c *agentConfig) bool {
			return c.opts.Listen == "/run/x.sock" && c.opts.ListenGroup == "bprof"
		}},
	} {
		c, err := parseAgentFlags(tt.args, &bytes.Buffer{})
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !tt.check(c) {
			t.Errorf("%q: config %+v", tt.args, c)
		}
	}
}

func TestAgentUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-p", "1"}, "no destination"},
		{[]string{"-p", "1", "--output-dir", "d", "--spool-dir", "s"}, "needs --upload-url"},
		{[]string{"-p", "1", "--output-dir", "d", "--listen-group", "g"}, "needs --listen"},
		{[]string{"-p", "1", "--output-dir", "d", "--label", "novalue"}, "key=value"},
		{[]string{"-p", "1", "--output-dir", "d", "--label", "a=1", "--label", "a=2"}, "twice"},
		{[]string{"-p", "1", "--output-dir", "d", "--period", "soon"}, "--period"},
		{[]string{"-p", "1", "--output-dir", "d", "--spool-max", "-3"}, "--spool-max"},
		{[]string{"-p", "1", "--output-dir", "d", "--log-format", "xml"}, "log format"},
		{[]string{"-p", "1", "--output-dir", "d", "--log-level", "loud"}, "log level \"loud\": want debug, info, warn or error"},
		{[]string{"-p", "1", "--output-dir", "d", "--log-level", "info+2"}, "log level"},
		{[]string{"-p", "0", "--output-dir", "d"}, "not a process id"},
		{[]string{"-p", "1", "--output-dir", "d", "extra"}, "unexpected argument"},
	} {
		var stdout, stderr bytes.Buffer
		code := mainWith(append([]string{"agent"}, tt.args...), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("bprof agent %q: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"1000", 1000}, {"64K", 64000}, {"64KiB", 64 << 10}, {"10MiB", 10 << 20}, {"1G", 1e9}, {"1GiB", 1 << 30}, {"5B", 5},
		{"", -1}, {"0", -1}, {"-1", -1}, {"1.5M", -1}, {"MiB", -1}, {"99999999999999999999", -1}, {"9999999999G", -1},
	} {
		got, err := parseSize(tt.in)
		if tt.want < 0 {
			if err == nil {
				t.Errorf("parseSize(%q) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

// lockedBuffer is a bytes.Buffer that the agent writes its log to while the
// test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runAgentUntil runs `bprof agent args` in this process until done, asked
// every 20 ms with the agent's log so far, says so, then stops it (the last
// partial batches are shipped) and returns the log. Start-up takes from under
// a second to several on a busy machine, so tests wait for what they need
// (batches written, a client done), never for a fixed time; timeout only
// bounds a test that would otherwise hang.
func runAgentUntil(t *testing.T, timeout time.Duration, done func(log string) bool, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr lockedBuffer
	errc := make(chan error, 1)
	go func() { errc <- runAgentContext(ctx, args, &stderr) }()
	deadline := time.After(timeout)
wait:
	for !done(stderr.String()) {
		select {
		case err := <-errc:
			t.Fatalf("bprof agent %q ended early: %v\n%s", args, err, stderr.String())
		case <-deadline:
			t.Errorf("bprof agent %q: still waiting after %s", args, timeout)
			break wait
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("bprof agent %q: %v\n%s", args, err, stderr.String())
	}
	return stderr.String()
}

// batchesIn is a runAgentUntil condition: at least n batches in dir.
func batchesIn(dir string, n int) func(string) bool {
	return func(string) bool {
		js, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		return len(js) >= n
	}
}

// readBatches reads the sidecars and profiles of a batch directory.
func readBatches(t *testing.T, dir string) ([]map[string]any, []*profile.Profile) {
	t.Helper()
	jsons, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var scs []map[string]any
	var ps []*profile.Profile
	for _, js := range jsons {
		data, err := os.ReadFile(js)
		if err != nil {
			t.Fatal(err)
		}
		var sc map[string]any
		if err := json.Unmarshal(data, &sc); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(strings.TrimSuffix(js, ".json") + ".pb.gz")
		if err != nil {
			t.Fatal(err)
		}
		p, err := profile.Parse(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, sc)
		ps = append(ps, p)
	}
	return scs, ps
}

func TestAgentBPF(t *testing.T) {
	testenv.RequireRoot(t)
	py := testenv.RequireCommand(t, "python3")
	cmd := start(t, py, "-c", "while True: pass")
	dir := t.TempDir()
	log := runAgentUntil(t, time.Minute, batchesIn(dir, 3), "-p", strconv.Itoa(cmd.Process.Pid), "--period", "500ms",
		"--application-name", "busy", "--label", "env=test", "--output-dir", dir)
	scs, ps := readBatches(t, dir)
	if len(scs) < 4 {
		t.Fatalf("%d batches, want 3 full and a partial one\n%s", len(scs), log)
	}
	var total float64
	for i, sc := range scs {
		if sc["application_name"] != "busy" || sc["pid"] != float64(cmd.Process.Pid) || sc["labels"].(map[string]any)["env"] != "test" {
			t.Errorf("sidecar %v", sc)
		}
		if err := ps[i].CheckValid(); err != nil {
			t.Error(err)
		}
		total += sc["samples"].(float64)
	}
	// Three full periods of 500 ms: 150 samples of a thread that has a whole
	// CPU; a third of that still holds on a machine busy enough to give the
	// target a third of a CPU.
	if total < 50 {
		t.Errorf("%v samples of a busy loop over three 500 ms periods, want 150 or more", total)
	}
	if n := strings.Count(log, "batch shipped"); n != len(scs) {
		t.Errorf("%d 'batch shipped' log lines for %d batches:\n%s", n, len(scs), log)
	}
}

func TestAgentBPFRegister(t *testing.T) {
	testenv.RequireRoot(t)
	py := testenv.RequireCommand(t, "python3")
	dir := t.TempDir()
	sock := filepath.Join(t.TempDir(), "bprof.sock")
	script := `
import os, time
from bprof_client import Profiler
print(os.getpid(), flush=True)
p = Profiler(application_name="my-app", period=45, upload_timeout=10, labels={"env": "prod"})
p.start()
def spin(t):
    end = time.process_time() + t
    while time.process_time() < end:
        pass
spin(1.0)
p.stop()
`
	done := make(chan []byte, 1)
	go func() {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(sock); err == nil {
				break // the agent is listening
			}
		}
		cmd := exec.Command(py, "-c", script)
		cmd.Env = append(os.Environ(), "BPROF_SOCKET="+sock, "PYTHONPATH="+filepath.Join("..", "..", "python"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			out = append(out, []byte(err.Error())...)
		}
		done <- out
	}()
	var out []byte
	log := runAgentUntil(t, 2*time.Minute, func(string) bool {
		select {
		case out = <-done:
			return true // the client has stopped: its batch is shipped
		default:
			return false
		}
	}, "--listen", sock, "--output-dir", dir)
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("python: %s", out)
	}
	scs, ps := readBatches(t, dir)
	if len(scs) != 1 {
		t.Fatalf("%d batches, want 1 (shipped at stop)\n%s", len(scs), log)
	}
	sc := scs[0]
	if sc["application_name"] != "my-app" || sc["pid"] != float64(pid) || sc["labels"].(map[string]any)["env"] != "prod" {
		t.Errorf("sidecar %v, want my-app, pid %d, env=prod", sc, pid)
	}
	// 1 s of CPU time in spin, by the client's own clock, is about 100
	// samples; the count is binomial (see expectedSamples), so 60 is far
	// below any honest run.
	if sc["samples"].(float64) < 60 {
		t.Errorf("%v samples over a spin of 1 s of CPU, want about 100", sc["samples"])
	}
	var spin bool
	for _, s := range ps[0].Sample {
		for _, l := range s.Location {
			for _, ln := range l.Line {
				spin = spin || ln.Function.Name == "spin"
			}
		}
	}
	if !spin {
		t.Errorf("no Python frame 'spin' in the profile")
	}
}

// TestAgentPeriodsMatchCPUTime: batches of 1 s periods hold every sample
// once. Their samples add up to what the target's own CPU time over their
// span says a 100 Hz sampler takes, within sampling noise; each batch's wall
// time is the batch's duration; labels are in every batch.
func TestAgentPeriodsMatchCPUTime(t *testing.T) {
	testenv.RequireRoot(t)
	py := testenv.RequireCommand(t, "python3")
	cmd := start(t, py, "-c", "while True: pass")
	pid := cmd.Process.Pid
	cpu := watchRunTime(t, pid)

	dir := t.TempDir()
	log := runAgentUntil(t, time.Minute, batchesIn(dir, 3), "-p", strconv.Itoa(pid), "--period", "1s",
		"--application-name", "ledger", "--label", "env=ci", "--output-dir", dir)
	scs, ps := readBatches(t, dir)
	if len(scs) < 4 {
		t.Fatalf("%d batches, want 3 full and 1 partial\n%s", len(scs), log)
	}
	var got int64
	first, last := time.Unix(0, ps[0].TimeNanos), time.Time{}
	for i, p := range ps {
		var wall int64
		for _, s := range p.Sample {
			got += s.Value[0]
			if s.NumLabel["thread_id"][0] == int64(pid) {
				wall += s.Value[2]
			}
		}
		start := time.Unix(0, p.TimeNanos)
		end := start.Add(time.Duration(p.DurationNanos))
		first, last = minTime(first, start), maxTime(last, end)
		sc := scs[i]
		if sc["application_name"] != "ledger" || sc["labels"].(map[string]any)["env"] != "ci" || sc["pid"] != float64(pid) {
			t.Errorf("batch %d sidecar %v", i, sc)
		}
		if len(p.SampleType) != 3 || p.SampleType[2].Type != "wall" {
			t.Errorf("batch %d sample types %v, want samples, cpu and wall", i, p.SampleType)
		}
		// Wall time is measured, not sampled: the thread's is the batch's span.
		if d := float64(p.DurationNanos); math.Abs(float64(wall)-d) > 0.01*d {
			t.Errorf("batch %d: the thread's wall time is %s of a %s batch, want it ± 1%%", i, time.Duration(wall), time.Duration(p.DurationNanos))
		}
	}
	// A 100 Hz cpu-clock tick lands on the target with the probability q
	// that it is on that CPU: over n ticks the count is binomial, with
	// σ = √(n·q·(1−q)). The run time is read every 10 ms, so each end of the
	// span may be off by a tick more.
	ran := cpu.between(first, last)
	span := last.Sub(first)
	want := ran.Seconds() * 100
	n := span.Seconds() * 100
	q := math.Min(1, ran.Seconds()/span.Seconds())
	sigma := math.Sqrt(n * q * (1 - q))
	t.Logf("batches: %d samples over %s, in which the target ran %s: want %.0f ± %.1f (4σ + 2)", got, span, ran, want, 4*sigma+2)
	if math.Abs(float64(got)-want) > 4*sigma+2 {
		t.Errorf("%d samples in the batches, want %.0f ± %.1f", got, want, 4*sigma+2)
	}
}

// runTimes is a thread's run time (schedstat) read every 10 ms.
type runTimes struct {
	mu  sync.Mutex
	at  []time.Time
	ran []time.Duration
}

// watchRunTime reads the run time of thread pid of process pid every 10 ms
// until the test ends.
func watchRunTime(t *testing.T, pid int) *runTimes {
	rt := &runTimes{}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			ns, err := process.RunTime(pid, pid)
			if err == nil {
				rt.mu.Lock()
				rt.at = append(rt.at, time.Now())
				rt.ran = append(rt.ran, time.Duration(ns))
				rt.mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return rt
}

// between is the run time from a to b, each end taken from the read nearest it.
func (rt *runTimes) between(a, b time.Time) time.Duration {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	at := func(x time.Time) time.Duration {
		i, _ := slices.BinarySearchFunc(rt.at, x, func(e, x time.Time) int { return e.Compare(x) })
		return rt.ran[min(i, len(rt.ran)-1)]
	}
	return at(b) - at(a)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// TestAgentSystemWide: with no -p and no --listen the agent profiles every
// process, picks up a Python process started after it, and notes its exit.
func TestAgentSystemWide(t *testing.T) {
	testenv.RequireRoot(t)
	py := testenv.RequireCommand(t, "python3")
	dir := t.TempDir()
	var late *exec.Cmd
	killed := false
	t.Cleanup(func() {
		if late != nil && !killed {
			late.Process.Kill()
			late.Wait()
		}
	})
	// The late process starts once the agent is running, and the agent stops
	// once a batch of it is in: a batch is shipped each 1 s period.
	log := runAgentUntil(t, 2*time.Minute, func(log string) bool {
		if late == nil {
			if !strings.Contains(log, "agent started") {
				return false
			}
			late = exec.Command(py, "-c", "import time\ndef late_comer():\n    end = time.time() + 60\n    while time.time() < end: pass\nlate_comer()")
			if err := late.Start(); err != nil {
				t.Fatalf("start the late process: %v", err)
			}
			return false
		}
		if !killed {
			js, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("*-%d-*.json", late.Process.Pid)))
			if len(js) < 2 { // the first may end before its Python frames are walked (pyenv's shim execs python)
				return false
			}
			late.Process.Kill()
			late.Wait()
			killed = true
		}
		return strings.Contains(log, fmt.Sprintf("msg=\"target exited\" pid=%d ", late.Process.Pid))
	}, "--period", "1s", "--output-dir", dir, "--log-level", "debug")
	pid := late.Process.Pid
	// An exit is one info line, from the agent, not also a warning from
	// the session; processes turned down are debug lines.
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "exited") && !strings.Contains(line, "level=INFO") {
			t.Errorf("exit logged as %q, want one info line", line)
		}
	}
	if !strings.Contains(log, "level=DEBUG msg=\"system-wide: not profiled\"") {
		t.Errorf("--log-level debug: no debug line for the processes turned down")
	}
	scs, ps := readBatches(t, dir)
	found := false
	pids := map[float64]bool{}
	for i, sc := range scs {
		pids[sc["pid"].(float64)] = true
		if sc["pid"] != float64(pid) {
			continue
		}
		for _, s := range ps[i].Sample {
			if got := s.NumLabel["pid"]; len(got) != 1 || got[0] != int64(pid) {
				t.Errorf("sample of the late process has pid label %v", got)
			}
			for _, loc := range s.Location {
				if loc.Line[0].Function.Name == "late_comer" {
					found = true
				}
			}
		}
	}
	t.Logf("%d batches from %d processes", len(scs), len(pids))
	if !found {
		t.Errorf("no batch of the process started after the agent (pid %d) with its Python frame late_comer\n%s", pid, log)
	}
}

// TestAgentSIGTERM: the real binary, stopped by SIGTERM, cuts the current
// partial period into a final batch, writes it and exits 0.
func TestAgentSIGTERM(t *testing.T) {
	testenv.RequireRoot(t)
	py := testenv.RequireCommand(t, "python3")
	bin := filepath.Join(t.TempDir(), "bprof")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	target := start(t, py, "-c", "while True: pass")
	dir := t.TempDir()
	agent := exec.Command(bin, "agent", "-p", strconv.Itoa(target.Process.Pid), "--period", "45s", "--output-dir", dir)
	stderr := newSignalWriter("agent started")
	agent.Stderr = stderr
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, stderr)
	pid := target.Process.Pid
	ran0, _ := process.RunTime(pid, pid)
	began := time.Now()
	time.Sleep(2 * time.Second) // what the batch holds, not a wait for readiness
	ran1, _ := process.RunTime(pid, pid)
	span := time.Since(began)
	agent.Process.Signal(syscall.SIGTERM)
	if err := agent.Wait(); err != nil {
		t.Fatalf("agent after SIGTERM: %v\n%s", err, stderr.String())
	}
	scs, _ := readBatches(t, dir)
	want, tol := expectedSamples(float64(ran1-ran0)/1e9, span.Seconds())
	if len(scs) != 1 || scs[0]["samples"].(float64) < want-tol {
		t.Fatalf("after SIGTERM 2 s into a 45 s period: batches %v, want one final batch of at least %.0f samples\n%s", scs, want-tol, stderr.String())
	}
}
