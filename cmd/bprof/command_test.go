package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/flamegraph"
	"github.com/google/pprof/profile"
)

const cliPy = "../../testdata/python/cli.py"

// cpuShare is the share of CPU samples whose stack holds fn, and their count.
func cpuShare(p *profile.Profile, fn string) (share float64, total int64) {
	var in int64
	for _, s := range p.Sample {
		total += s.Value[0]
		if stackHas(s, fn) {
			in += s.Value[0]
		}
	}
	if total == 0 {
		return 0, 0
	}
	return float64(in) / float64(total), total
}

// TestRecordCommand: `record -- python3 ...` profiles the command from its
// start, with Python frames, writes pprof and the --svg beside it, and exits
// with the command's status.
func TestRecordCommand(t *testing.T) {
	testenv.RequireRoot(t)
	python := testenv.RequireCommand(t, "python3")
	dir := t.TempDir()
	out, svg := filepath.Join(dir, "cmd.pb.gz"), filepath.Join(dir, "cmd.svg")
	var stdout, stderr bytes.Buffer
	code := mainWith([]string{"record", "-o", out, "--svg", svg, "--", python, cliPy, "burn", "1.5", "3"}, &stdout, &stderr)
	if code != 3 {
		t.Fatalf("exit %d, want the command's 3; stderr:\n%s", code, stderr.String())
	}
	assertNoBPFLeft(t) // this process's fds: other developers' bprof programs may be loaded meanwhile
	p := readProfile(t, out)
	// hot() spins for 1.5 s of CPU time, and the interpreter's start-up
	// and exit take tens of ms more: at 100 Hz of CPU time ~150 samples
	// (TestRecordRate holds the rate to ±5 %), of which ~90 % in hot.
	// 75 and 0.6 leave room for a machine so loaded that start-up is slow.
	share, n := cpuShare(p, "hot")
	t.Logf("%d CPU samples, %.2f in hot()", n, share)
	if n < 75 {
		t.Errorf("%d CPU samples from a command busy for 1.5 s at 100 Hz", n)
	}
	if share < 0.6 {
		t.Errorf("hot() in %.2f of the samples, want most", share)
	}
	for _, s := range p.Sample {
		if got := s.NumLabel["pid"]; len(got) != 1 {
			t.Fatalf("sample without a pid label: %v", s.NumLabel)
		}
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, new(struct{})); err != nil {
		t.Errorf("--svg: %v", err)
	}
	if !bytes.Contains(b, []byte(">hot<")) && !bytes.Contains(b, []byte("hot (")) {
		t.Errorf("--svg has no frame hot")
	}

	// Every format -o can take, written from this recording's profile.
	for _, tc := range []struct {
		name, format string
		check        func(t *testing.T, b []byte)
	}{
		{"a.svg", "", func(t *testing.T, b []byte) {
			if err := xml.Unmarshal(b, new(struct{})); err != nil {
				t.Error(err)
			}
		}},
		{"a.html", "", func(t *testing.T, b []byte) {
			if !bytes.HasPrefix(b, []byte("<!DOCTYPE html>")) {
				t.Error("not html")
			}
		}},
		{"a.json", "", func(t *testing.T, b []byte) {
			var f struct{ Profiles []struct{ EndValue int64 } }
			if err := json.Unmarshal(b, &f); err != nil || len(f.Profiles) != 1 || f.Profiles[0].EndValue <= 0 {
				t.Errorf("speedscope: %v %+v", err, f)
			}
		}},
		{"a.folded", "", checkFolded},
		{"a.txt", "", checkFolded},
		{"a.out", "folded", checkFolded},
		{"a.svg.pb", "", checkPprof},
		{"a.pb.gz", "", checkPprof},
		{"a.svg", "pprof", checkPprof},
	} {
		t.Run(tc.name+"/"+tc.format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.name)
			o, err := outputFor(path, tc.format)
			if err != nil {
				t.Fatal(err)
			}
			if err := o.write(p); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, b)
		})
	}
}

// TestRecordCommandFramePointers: without unwind tables nothing asks for
// the command's new mappings after its exec, and its CPython is attached
// by polling (AttachWhenPython).
func TestRecordCommandFramePointers(t *testing.T) {
	testenv.RequireRoot(t)
	python := testenv.RequireCommand(t, "python3")
	out := filepath.Join(t.TempDir(), "fp.pb.gz")
	var stdout, stderr bytes.Buffer
	if code := mainWith([]string{"record", "--frame-pointers", "--no-offcpu", "-o", out, "--", python, cliPy, "burn", "1", "0"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	// hot() spins 1 s of CPU of the ~1.1 s the command runs; the poll
	// attaches within 20 ms of the interpreter being loaded: ~0.9 of the
	// samples. 0.5 leaves room for a slow start-up on a loaded machine.
	share, n := cpuShare(readProfile(t, out), "hot")
	t.Logf("%d samples, %.2f in hot()", n, share)
	if share < 0.5 {
		t.Errorf("hot() in %.2f of %d samples, want most", share, n)
	}
}

func checkFolded(t *testing.T, b []byte) {
	t.Helper()
	if !bytes.Contains(b, []byte(";hot")) {
		t.Errorf("folded stacks without hot: %.200q", b)
	}
}

func checkPprof(t *testing.T, b []byte) {
	t.Helper()
	p, err := profile.ParseData(b)
	if err != nil {
		t.Fatalf("not pprof: %v", err)
	}
	if share, _ := cpuShare(p, "hot"); share == 0 {
		t.Error("pprof without hot")
	}
}

// TestRecordCommandSignal: the real binary passes SIGTERM on to its command,
// writes the profile and exits with the command's status.
func TestRecordCommandSignal(t *testing.T) {
	testenv.RequireRoot(t)
	python := testenv.RequireCommand(t, "python3")
	bin := buildBprof(t)
	out := filepath.Join(t.TempDir(), "sig.pb.gz")
	rec := exec.Command(bin, "record", "-o", out, "--", python, cliPy, "signal")
	var stderr bytes.Buffer
	rec.Stderr = &stderr
	pipe, err := rec.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	defer rec.Process.Kill()
	progs := waitForOwnPrograms(t, rec.Process.Pid)
	line, err := bufio.NewReader(pipe).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("command said %q (%v); stderr:\n%s", line, err, stderr.String())
	}
	rec.Process.Signal(syscall.SIGTERM)
	err = rec.Wait()
	if code := rec.ProcessState.ExitCode(); code != 7 {
		t.Fatalf("exit %d (%v), want the command's 7 (its SIGTERM handler); stderr:\n%s", code, err, stderr.String())
	}
	// The command spun in hot() for 0.5 s before it said ready, from its
	// start under the profiler: ~50 samples at 100 Hz; 20 allows for a
	// loaded machine.
	p := readProfile(t, out)
	share, n := cpuShare(p, "hot")
	t.Logf("%d samples, %.2f in hot()", n, share)
	if float64(n)*share < 20 {
		t.Errorf("profile has %d samples, %.2f in hot(): want ≥ 20 in hot()", n, share)
	}
	assertProgramsGone(t, progs)
}

// TestRecordSubprocesses: --subprocesses follows forked children into the
// same profile, each under its own pid label, with Python frames also when
// a forked child execs a new interpreter (one child of each kind).
func TestRecordSubprocesses(t *testing.T) {
	testenv.RequireRoot(t)
	python := testenv.RequireCommand(t, "python3")
	for _, tc := range []struct {
		name string
		args []string
		kids int
	}{
		{"fork and fork+exec", []string{"forkexec", "2"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "kids.pb.gz")
			var stdout, stderr bytes.Buffer
			args := append([]string{"record", "--subprocesses", "--no-offcpu", "-o", out, "--", python, cliPy}, tc.args...)
			if code := mainWith(args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d:\n%s", code, stderr.String())
			}
			p := readProfile(t, out)
			// Only the children run hot(): the parent forks and waits.
			kids := map[int64]int64{}
			for _, s := range p.Sample {
				if stackHas(s, "hot") {
					kids[s.NumLabel["pid"][0]] += s.Value[0]
				}
			}
			// Each child spins for 2 s of CPU time and the poll finds it
			// within 100 ms, plus the time to add it: ~190 samples at 100 Hz
			// of CPU time. Adding takes long on a loaded machine (the race
			// detector under a load average of 15 left a child 28 of 100
			// possible samples), so 50 asks only that each child was
			// followed, with its Python frames, in the first 1.5 s of its
			// CPU time.
			t.Logf("hot() samples by pid: %v", kids)
			busy := 0
			for _, n := range kids {
				if n >= 50 {
					busy++
				}
			}
			if busy != tc.kids {
				t.Errorf("%d children with ≥ 50 samples in hot(), want %d (%v)", busy, tc.kids, kids)
			}
		})
	}
}

func TestRecordCommandErrors(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"record", "--", "no-such-command-bprof"}, 2, `command "no-such-command-bprof" not found`},
		{[]string{"record", "--"}, 2, "no command after --"},
		{[]string{"record", "python3", "app.py"}, 2, "put a command to run after --"},
		{[]string{"record", "--format", "png", "-p", "1"}, 2, `unknown format "png" (want pprof, svg`},
		{[]string{"record", "-p", "abc"}, 2, `invalid argument "abc" for "-p, --pid" flag: must be an integer`},
		{[]string{"record", "-o", "/nonexistent/dir/x.svg", "--", "touch", marker}, 1, "not writable"},
		{[]string{"record", "--svg", "/nonexistent/dir/x.svg", "--", "touch", marker}, 1, "not writable"},
		{[]string{"record", "-o", filepath.Join(dir, "x.svg"), "-p", "999999999"}, 1, "no process with PID 999999999"},
		// A directory that exists but takes no files (root is refused too).
		{[]string{"record", "-o", "/proc/x.svg", "--", "touch", marker}, 1, "not writable"},
		// A directory as the output: refused at once, not after the recording.
		{[]string{"record", "-o", dir, "--", "touch", marker}, 1, "is a directory"},
		{[]string{"record", "-o", filepath.Join(dir, "x.pb.gz"), "--svg", dir + "/", "--", "touch", marker}, 1, "is a directory"},
	} {
		var stdout, stderr bytes.Buffer
		code := mainWith(tc.args, &stdout, &stderr)
		msg := strings.TrimSpace(stderr.String())
		if code != tc.code || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line containing %q", tc.args, code, msg, tc.code, tc.want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although the output was not writable")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

// TestOutputFor: the format follows the extension, --format overrides it.
func TestOutputFor(t *testing.T) {
	for _, tc := range []struct {
		path, format string
		want         flamegraph.Format
	}{
		{"p.pb.gz", "", ""},
		{"p.pprof", "", ""},
		{"noext", "", ""},
		{"p.SVG", "", flamegraph.SVG},
		{"p.htm", "", flamegraph.HTML},
		{"p.json", "", flamegraph.Speedscope},
		{"p.txt", "", flamegraph.Folded},
		{"p.svg", "pprof", ""},
		{"p.pb.gz", "svg", flamegraph.SVG},
	} {
		o, err := outputFor(tc.path, tc.format)
		if err != nil || o.format != tc.want {
			t.Errorf("outputFor(%q, %q) = %q, %v; want %q", tc.path, tc.format, o.format, err, tc.want)
		}
	}
}

// buildBprof builds the real binary, for tests that signal it.
func buildBprof(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bprof")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestRecordCommandCtrlC: Ctrl-C typed at a terminal reaches the command
// once (bprof, in the same foreground process group, does not pass on a
// second one): Python's KeyboardInterrupt ends it, bprof writes the
// profile and exits with the command's status, 130 (128 + SIGINT).
func TestRecordCommandCtrlC(t *testing.T) {
	testenv.RequireRoot(t)
	python := testenv.RequireCommand(t, "python3")
	bin := buildBprof(t)
	out := filepath.Join(t.TempDir(), "int.pb.gz")
	// Two SIGINTs would interrupt the handler of the first: the second
	// KeyboardInterrupt would print a second traceback and exit 1.
	// "ready" is printed inside the try: a Ctrl-C sent right after it must
	// find the handler in place (under load it once came before the try).
	script := `import sys, time
try:
    print("ready", flush=True)
    end = time.monotonic() + 60
    while time.monotonic() < end: pass
except KeyboardInterrupt:
    time.sleep(0.5)
    print("interrupted once", flush=True)
    raise
`
	master, slave := openPTY(t)
	rec := exec.Command(bin, "record", "-o", out, "--", python, "-c", script)
	rec.Stdin, rec.Stdout, rec.Stderr = slave, slave, slave
	rec.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	defer rec.Process.Kill()
	slave.Close()
	var log screenLog
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			log.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	log.waitFor(t, 0, regexp.MustCompile(`ready`), 30*time.Second)
	master.WriteString("\x03")
	rec.Wait()
	<-drained
	screen := log.String()
	if code := exitCode(rec.ProcessState); code != 130 {
		t.Errorf("exit %d, want 130; terminal:\n%s", code, screen)
	}
	if strings.Count(screen, "interrupted once") != 1 || strings.Count(screen, "KeyboardInterrupt") != 1 {
		t.Errorf("the command was not interrupted exactly once; terminal:\n%s", screen)
	}
	if !strings.Contains(screen, "bprof: wrote "+out) {
		t.Errorf("no profile written; terminal:\n%s", screen)
	}
	readProfile(t, out)
}
