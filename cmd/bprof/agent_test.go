package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/profiler"
	"github.com/google/pprof/profile"
)

func TestParseAgentFlags(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		check func(c *agentConfig) bool
	}{
		{[]string{"-p", "1", "--output-dir", "d"}, func(c *agentConfig) bool {
			return c.opts.Period == 45*time.Second && c.opts.UploadTimeout == 10*time.Second && c.opts.Rate == 100 &&
				c.outputDir == "d" && c.py.URL == "" && c.logFormat == "text"
		}},
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

// runAgentFor runs `bprof agent args` in this process for d.
func runAgentFor(t *testing.T, d time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var stderr bytes.Buffer
	if err := runAgentContext(ctx, args, &stderr); err != nil {
		t.Fatalf("bprof agent %q: %v\n%s", args, err, stderr.String())
	}
	return stderr.String()
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
	time.Sleep(300 * time.Millisecond)
	dir := t.TempDir()
	// 3 s: start-up (the verifier, kallsyms, unwind tables) takes up to a
	// second of it before the first period begins.
	log := runAgentFor(t, 3*time.Second, "-p", strconv.Itoa(cmd.Process.Pid), "--period", "500ms",
		"--application-name", "busy", "--label", "env=test", "--output-dir", dir)
	scs, ps := readBatches(t, dir)
	if len(scs) < 3 {
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
	if total < 50 {
		t.Errorf("%v samples of a busy loop over 2-3 s at 100 Hz, want 200 or more", total)
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
    end = time.time() + t
    while time.time() < end:
        pass
spin(1.0)
p.stop()
`
	done := make(chan []byte, 1)
	go func() {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
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
	log := runAgentFor(t, 2500*time.Millisecond, "--listen", sock, "--output-dir", dir)
	out := <-done
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
	if sc["samples"].(float64) < 30 {
		t.Errorf("%v samples over a 1s spin, want about 100", sc["samples"])
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

// TestAgentPeriodsMatchRecord: period 3 s over 10 s gives three full batches
// and a final partial one; their samples add up to what a record of the same
// process over the same span counts, within 1 %; labels are in every batch.
func TestAgentPeriodsMatchRecord(t *testing.T) {
	testenv.RequireRoot(t)
	py := testenv.RequireCommand(t, "python3")
	cmd := start(t, py, "-c", "while True: pass")
	pid := cmd.Process.Pid

	// The parallel record: its own session, sampling the same process.
	rec, err := profiler.NewSession(profiler.Options{OffCPU: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	if err := rec.Add(pid); err != nil {
		t.Fatal(err)
	}
	recCtx, stopRec := context.WithCancel(context.Background())
	recDone := make(chan error, 1)
	go func() { recDone <- rec.Run(recCtx) }()

	dir := t.TempDir()
	log := runAgentFor(t, 10*time.Second, "-p", strconv.Itoa(pid), "--period", "3s",
		"--application-name", "ledger", "--label", "env=ci", "--output-dir", dir)
	stopRec()
	if err := <-recDone; err != nil {
		t.Fatal(err)
	}
	rp, _, _ := rec.Cut()
	var want int64
	for _, s := range rp.Sample {
		want += s.Value[0]
	}

	scs, ps := readBatches(t, dir)
	if len(scs) != 4 {
		t.Fatalf("%d batches, want 3 full and 1 partial\n%s", len(scs), log)
	}
	var got int64
	var span time.Duration
	for i, p := range ps {
		for _, s := range p.Sample {
			got += s.Value[0]
		}
		span += time.Duration(p.DurationNanos)
		sc := scs[i]
		if sc["application_name"] != "ledger" || sc["labels"].(map[string]any)["env"] != "ci" || sc["pid"] != float64(pid) {
			t.Errorf("batch %d sidecar %v", i, sc)
		}
		if len(p.SampleType) != 3 || p.SampleType[2].Type != "wall" {
			t.Errorf("batch %d sample types %v, want samples, cpu and wall", i, p.SampleType)
		}
	}
	// The two sessions start and stop some milliseconds apart, so compare
	// samples per second of each one's own span.
	gotRate := float64(got) / span.Seconds()
	wantRate := float64(want) / time.Duration(rp.DurationNanos).Seconds()
	t.Logf("agent batches: %d samples over %s (%.1f/s); parallel record: %d over %s (%.1f/s)",
		got, span, gotRate, want, time.Duration(rp.DurationNanos), wantRate)
	if math.Abs(gotRate-wantRate) > 0.01*wantRate {
		t.Errorf("agent batches: %.1f samples/s, the parallel record %.1f/s: more than 1%% apart", gotRate, wantRate)
	}
}

// TestAgentSystemWide: with no -p and no --listen the agent profiles every
// process, and picks up a Python process started after it.
func TestAgentSystemWide(t *testing.T) {
	testenv.RequireRoot(t)
	py := testenv.RequireCommand(t, "python3")
	dir := t.TempDir()
	pidc := make(chan int, 1)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		cmd := exec.Command(py, "-c", "import time\ndef late_comer():\n    end = time.time() + 3\n    while time.time() < end: pass\nlate_comer()")
		if err := cmd.Start(); err != nil {
			pidc <- 0
			return
		}
		pidc <- cmd.Process.Pid
		cmd.Wait()
	}()
	log := runAgentFor(t, 5*time.Second, "--period", "1s", "--output-dir", dir)
	pid := <-pidc
	if pid == 0 {
		t.Fatal("could not start the late process")
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
	var stderr bytes.Buffer
	agent.Stderr = &stderr
	before := bprofPrograms(t)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	waitForPrograms(t, before)
	time.Sleep(2 * time.Second)
	agent.Process.Signal(syscall.SIGTERM)
	if err := agent.Wait(); err != nil {
		t.Fatalf("agent after SIGTERM: %v\n%s", err, stderr.String())
	}
	scs, _ := readBatches(t, dir)
	if len(scs) != 1 || scs[0]["samples"].(float64) < 50 {
		t.Fatalf("after SIGTERM 2 s into a 45 s period: batches %v, want one final batch of ~200 samples\n%s", scs, stderr.String())
	}
}
