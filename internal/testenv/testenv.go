// Package testenv decides whether a test that needs something from the machine
// (root, BPF, a Python build, a browser) may skip when it is missing.
//
// On a developer's machine a missing requirement skips the test with the reason.
// CI sets BPROF_NO_SKIP=1, and then the same missing requirement fails the test:
// a green CI run means every BPF and browser test really ran.
package testenv

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// NoSkipVar is the environment variable that turns skips into failures.
const NoSkipVar = "BPROF_NO_SKIP"

// Strict reports whether skips are forbidden (CI).
func Strict() bool { return os.Getenv(NoSkipVar) == "1" }

// Skip skips the test with reason, or fails it when skips are forbidden.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if Strict() {
		t.Fatalf("%s (and %s=1 forbids skipping)", reason, NoSkipVar)
	}
	t.Skip(reason)
}

// RequireRoot skips (or fails, under CI) unless the test runs as root, which
// loading BPF programs and opening perf events need here.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root for BPF and perf events")
	}
}

// RequireCommand skips (or fails, under CI) unless name is on PATH, and
// returns its path.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Skip(t, "needs "+name+" on PATH")
	}
	return p
}

// Process is a helper program a test started, with its standard input and
// output piped to the test.
type Process struct {
	Cmd    *exec.Cmd
	Stdin  io.WriteCloser
	Stdout *bufio.Reader
}

// Start runs name with args, its standard error going to the test's, and
// kills it when the test ends, or when the test binary dies: a binary that
// times out runs no cleanup, and its targets (some spin for 30 s or more)
// would go on loading the machine for the tests after it.
func Start(t testing.TB, name string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return &Process{Cmd: cmd, Stdin: stdin, Stdout: bufio.NewReader(stdout)}
}
