package profiler

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/process"
	"github.com/google/pprof/profile"
)

// interpreter is one CPython build found on the machine.
type interpreter struct {
	name   string // "3.11.7", "debian-3.11" or "trixie-3.13"
	path   string // inside the chroot, if any
	minor  int
	chroot string // a Debian root the interpreter runs in: the container case
}

// chrootDir is where .ci/setup-chroots.sh builds Debian roots (trixie's 3.13, sid's 3.14).
func chrootDir() string {
	if d := os.Getenv("BPROF_CHROOTS"); d != "" {
		return d
	}
	return "/var/cache/bprof/chroots"
}

// interpreters lists the CPython 3.7+ builds on this machine: pyenv's and
// Debian's. CI must find at least six.
func interpreters(t *testing.T) []interpreter {
	t.Helper()
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		root = filepath.Join(os.Getenv("HOME"), ".pyenv")
	}
	var out []interpreter
	seen := map[string]bool{}
	add := func(name, path, chroot string) {
		real, err := filepath.EvalSymlinks(filepath.Join(chroot, path))
		if err != nil || seen[real] {
			return
		}
		argv := []string{path, "-c", "import sys; print(sys.version_info[1])"}
		if chroot != "" {
			argv = append([]string{"chroot", chroot}, argv...)
		}
		v, err := exec.Command(argv[0], argv[1:]...).Output()
		if err != nil {
			return
		}
		minor, err := strconv.Atoi(strings.TrimSpace(string(v)))
		if err != nil || minor < 7 {
			return
		}
		seen[real] = true
		out = append(out, interpreter{name: name, path: path, minor: minor, chroot: chroot})
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "versions", "3.*"))
	sort.Strings(dirs)
	for _, d := range dirs {
		add(filepath.Base(d), filepath.Join(d, "bin", "python3"), "")
	}
	debs, _ := filepath.Glob("/usr/bin/python3.[0-9]*")
	for _, p := range debs {
		if !strings.Contains(filepath.Base(p), "-") {
			add("debian-"+strings.TrimPrefix(filepath.Base(p), "python"), p, "")
		}
	}
	for _, suite := range []string{"trixie", "sid"} {
		root := filepath.Join(chrootDir(), suite)
		if _, err := os.Stat(filepath.Join(root, "usr/bin/python3")); err != nil {
			testenv.Skip(t, "no Debian "+suite+" chroot in "+chrootDir()+": run .ci/setup-chroots.sh")
			continue
		}
		before := len(out)
		add(suite, "/usr/bin/python3", root)
		if len(out) > before {
			out[len(out)-1].name = suite + "-3." + strconv.Itoa(out[len(out)-1].minor)
		}
	}
	if len(out) < 6 {
		testenv.Skip(t, "found "+strconv.Itoa(len(out))+" CPython builds (3.7+), need at least six")
	}
	return out
}

// startScript runs a Python script from testdata/python and waits for it to
// print "ready". The script then waits for "go" on stdin (release) before
// its timed work, so that a slow start-up of the profiler never eats into
// it. Its Stdout yields the rest of its output.
func startScript(t *testing.T, py interpreter, script string, args ...string) *testenv.Process {
	t.Helper()
	path, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "python", script))
	argv := append([]string{py.path, path}, args...)
	if py.chroot != "" {
		// The script goes inside the root; chroot execs Python in the same process.
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(py.chroot, "tmp", "bprof-test")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, script), src, 0o644); err != nil {
			t.Fatal(err)
		}
		argv = append([]string{"chroot", py.chroot, py.path, "/tmp/bprof-test/" + script}, args...)
	}
	proc := testenv.Start(t, argv[0], argv[1:]...)
	waitReady(t, proc)
	return proc
}

// waitReady reads the "ready" line a test target prints once set up.
func waitReady(t *testing.T, proc *testenv.Process) {
	t.Helper()
	line, err := proc.Stdout.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("%s: want ready, got %q (%v)", proc.Cmd.Path, line, err)
	}
}

// release tells targets waiting after "ready" that sampling has begun. A
// target that does not wait ignores the line.
func release(t *testing.T, procs ...*testenv.Process) {
	t.Helper()
	for _, p := range procs {
		if _, err := io.WriteString(p.Stdin, "go\n"); err != nil {
			t.Fatalf("release %d: %v", p.Cmd.Process.Pid, err)
		}
	}
}

// profileProcs records the given targets at 100 Hz (see profileAt).
func profileProcs(t *testing.T, d time.Duration, procs ...*testenv.Process) *profile.Profile {
	t.Helper()
	return profileAt(t, 100, d, procs...)
}

// profileAt records the given targets with a real Session at rate Hz,
// releasing them once they are all being sampled, until they have run for d
// of CPU time together, by the scheduler's count; on a machine too busy to
// give them that, for at most 3·d. So the samples a test counts rest on the
// CPU time it asked for, not on how busy the machine is. It then tells the
// targets "stop" (a target that reports on its work does so then).
func profileAt(t *testing.T, rate int, d time.Duration, procs ...*testenv.Process) *profile.Profile {
	t.Helper()
	testenv.RequireRoot(t)
	var warnings []string
	s, err := NewSession(Options{Rate: rate, Warn: func(m string) { warnings = append(warnings, m) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range procs {
		if err := s.Add(p.Cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	release(t, procs...)
	// The targets run for d of CPU time; the wall ceiling is only there to
	// end a test whose target stopped, so it is generous: on a loaded
	// machine a target got a quarter of a CPU (1,709 of 4,000 samples in 3d).
	ctx, cancel := context.WithTimeout(context.Background(), 10*d)
	defer cancel()
	go func() {
		start := runTime(procs)
		for ctx.Err() == nil && runTime(procs)-start < d {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		io.WriteString(p.Stdin, "stop\n")
	}
	p, _, _ := s.Cut()
	for _, w := range warnings {
		t.Logf("warning: %s", w)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	return p
}

// pyFrame is one Python frame of a sample.
type pyFrame struct {
	name, file string
	line       int64
}

// pyFrames returns a sample's Python frames, leaf first.
func pyFrames(s *profile.Sample) []pyFrame {
	var out []pyFrame
	for _, loc := range s.Location {
		if loc.Mapping == nil || loc.Mapping.File != export.PythonMapping {
			continue
		}
		fn := loc.Line[0].Function
		out = append(out, pyFrame{fn.Name, fn.Filename, loc.Line[0].Line})
	}
	return out
}

func names(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		out = append(out, loc.Line[0].Function.Name)
	}
	return out
}

func hasFrame(s *profile.Sample, name string) bool {
	for _, n := range names(s) {
		if n == name {
			return true
		}
	}
	return false
}

// markedLines maps each "# LINE:name" marker of a script to its line number.
func markedLines(t *testing.T, script string) map[string]int64 {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "python", script))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := map[string]int64{}
	sc := bufio.NewScanner(f)
	for n := int64(1); sc.Scan(); n++ {
		if _, tag, ok := strings.Cut(sc.Text(), "# LINE:"); ok {
			lines[strings.TrimSpace(tag)] = n
		}
	}
	return lines
}

func readAll(r io.Reader) string {
	b, _ := io.ReadAll(r)
	return string(b)
}

// runTime is the CPU time the processes' live threads have had.
func runTime(procs []*testenv.Process) time.Duration {
	var sum time.Duration
	for _, p := range procs {
		pid := p.Cmd.Process.Pid
		tids, _ := process.Threads(pid)
		for _, tid := range tids {
			if ns, err := process.RunTime(pid, tid); err == nil {
				sum += time.Duration(ns)
			}
		}
	}
	return sum
}

// startScriptProc is startScript (the memory tests' name for it).
func startScriptProc(t *testing.T, py interpreter, script string, args ...string) *testenv.Process {
	t.Helper()
	return startScript(t, py, script, args...)
}
