package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
)

// logBuffer is an agent's stderr, read by the test while the agent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// agentProc is a running `bprof agent` binary.
type agentProc struct {
	cmd  *exec.Cmd
	log  *logBuffer
	done chan struct{}
	err  error // of Wait, once done is closed
}

func startAgentBinary(t *testing.T, bin string, args ...string) *agentProc {
	t.Helper()
	p := &agentProc{cmd: exec.Command(bin, append([]string{"agent"}, args...)...), log: &logBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

// waitLog waits until the agent has logged want, failing if it exits first.
func (p *agentProc) waitLog(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(p.log.String(), want); time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("agent exited (%v) before logging %q:\n%s", p.err, want, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not log %q within 30 s:\n%s", want, p.log.String())
		}
	}
}

// exitCode waits at most within for the agent to exit and returns its status.
func (p *agentProc) exitCode(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("agent still running %s after the signal:\n%s", within, p.log.String())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

func (p *agentProc) signal(sig os.Signal) { p.cmd.Process.Signal(sig) }

// ingest is a Pyroscope-compatible endpoint on loopback whose answers the
// test controls: each request is announced on arrived, then answered as
// answer says.
type ingest struct {
	*httptest.Server
	arrived chan string // the request's name= parameter
	mu      sync.Mutex
	answer  func() int // the status to reply with; may block
	names   []string
}

func newIngest(t *testing.T, answer func() int) *ingest {
	in := &ingest{arrived: make(chan string, 100), answer: answer}
	in.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		select {
		case in.arrived <- name:
		default:
		}
		code := in.answer()
		if code == http.StatusOK {
			in.mu.Lock()
			in.names = append(in.names, name)
			in.mu.Unlock()
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(in.Close)
	return in
}

func (in *ingest) delivered() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.names...)
}

// closedPort returns a loopback URL nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func spooled(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.upload.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// TestAgentSignals stops the real binary with SIGTERM or SIGINT at each
// moment an operator might: while it loads, idle, with a target, while an
// upload is in flight, with the endpoint down, and twice.
func TestAgentSignals(t *testing.T) {
	testenv.RequireRoot(t)
	py := testenv.RequireCommand(t, "python3")
	bin := filepath.Join(t.TempDir(), "bprof")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	busy := func(t *testing.T) int {
		return start(t, py, "-c", "while True: pass # bprof-signal-test").Process.Pid
	}

	t.Run("starting", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "bprof.sock")
		a := startAgentBinary(t, bin, "--listen", sock, "--output-dir", t.TempDir())
		a.waitLog(t, "agent starting")
		a.signal(syscall.SIGTERM)
		if code := a.exitCode(t, 30*time.Second); code != 0 {
			t.Fatalf("exit %d after SIGTERM while starting:\n%s", code, a.log.String())
		}
		if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left behind: %v", err)
		}
	})

	t.Run("idle", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "bprof.sock")
		dir := t.TempDir()
		a := startAgentBinary(t, bin, "--listen", sock, "--output-dir", dir)
		a.waitLog(t, "agent started")
		if _, err := os.Stat(sock); err != nil {
			t.Fatalf("no socket after start: %v", err)
		}
		a.signal(syscall.SIGINT)
		if code := a.exitCode(t, 30*time.Second); code != 0 {
			t.Fatalf("exit %d after SIGINT while idle:\n%s", code, a.log.String())
		}
		if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left behind: %v", err)
		}
		if !strings.Contains(a.log.String(), "agent stopped") {
			t.Errorf("no 'agent stopped' line:\n%s", a.log.String())
		}
	})

	t.Run("system-wide", func(t *testing.T) {
		pid := busy(t)
		dir := t.TempDir()
		a := startAgentBinary(t, bin, "--match-cmdline", "bprof-signal-test", "--period", "45s", "--output-dir", dir)
		a.waitLog(t, fmt.Sprintf("system-wide: profiling\" pid=%d ", pid))
		time.Sleep(500 * time.Millisecond) // the work the last batch holds, not a readiness wait
		a.signal(syscall.SIGTERM)
		if code := a.exitCode(t, 30*time.Second); code != 0 {
			t.Fatalf("exit %d after SIGTERM:\n%s", code, a.log.String())
		}
		scs, _ := readBatches(t, dir)
		if len(scs) != 1 || scs[0]["pid"] != float64(pid) || scs[0]["samples"].(float64) < 10 {
			t.Fatalf("batches %v, want the final partial batch of pid %d with its samples\n%s", scs, pid, a.log.String())
		}
	})

	t.Run("uploading", func(t *testing.T) {
		pid := busy(t)
		release := make(chan struct{})
		var once sync.Once
		in := newIngest(t, func() int { <-release; return http.StatusOK })
		t.Cleanup(func() { once.Do(func() { close(release) }) })
		a := startAgentBinary(t, bin, "-p", strconv.Itoa(pid), "--period", "1s", "--upload-url", in.URL, "--upload-timeout", "20s")
		select {
		case <-in.arrived: // the first upload is in flight, held by the server
		case <-time.After(30 * time.Second):
			t.Fatalf("no upload within 30 s:\n%s", a.log.String())
		}
		a.signal(syscall.SIGTERM)
		a.waitLog(t, "stopping: flushing the last batches")
		once.Do(func() { close(release) })
		if code := a.exitCode(t, 30*time.Second); code != 0 {
			t.Fatalf("exit %d after SIGTERM while uploading:\n%s", code, a.log.String())
		}
		// The held upload, the rest of its batch and the final batch: CPU
		// and wall each, every one delivered.
		got := in.delivered()
		if len(got) < 4 || strings.Contains(a.log.String(), "uploads lost") {
			t.Fatalf("%d uploads delivered, want the held batch and the final one (4 or more):\n%s", len(got), a.log.String())
		}
		if !strings.Contains(a.log.String(), fmt.Sprintf("sent=%d ", len(got))) {
			t.Errorf("the log's sent counter does not say %d:\n%s", len(got), a.log.String())
		}
	})

	t.Run("endpoint-down", func(t *testing.T) {
		pid := busy(t)
		spool := t.TempDir()
		url := closedPort(t)
		a := startAgentBinary(t, bin, "-p", strconv.Itoa(pid), "--period", "1s", "--upload-url", url, "--spool-dir", spool)
		a.waitLog(t, "upload URL unreachable at start")
		a.waitLog(t, "upload failed, will retry")
		a.signal(syscall.SIGTERM)
		if code := a.exitCode(t, 30*time.Second); code != 0 {
			t.Fatalf("exit %d after SIGTERM with the endpoint down:\n%s", code, a.log.String())
		}
		if n := spooled(t, spool); n < 2 || !strings.Contains(a.log.String(), "uploads left in spool for the next start") {
			t.Fatalf("%d uploads in the spool, want the undelivered batches (2 or more):\n%s", n, a.log.String())
		}
	})

	t.Run("second-signal", func(t *testing.T) {
		pid := busy(t)
		spool := t.TempDir()
		hang := make(chan struct{})
		in := newIngest(t, func() int { <-hang; return http.StatusServiceUnavailable })
		t.Cleanup(func() { close(hang) })
		a := startAgentBinary(t, bin, "-p", strconv.Itoa(pid), "--period", "45s", "--upload-url", in.URL,
			"--upload-timeout", "60s", "--spool-dir", spool)
		a.waitLog(t, "agent started")
		time.Sleep(500 * time.Millisecond) // the work the last batch holds
		a.signal(syscall.SIGTERM)
		select {
		case <-in.arrived: // the final batch is spooled and its upload hangs
		case <-time.After(30 * time.Second):
			t.Fatalf("no upload within 30 s of SIGTERM:\n%s", a.log.String())
		}
		t0 := time.Now()
		a.signal(syscall.SIGTERM)
		if code := a.exitCode(t, 5*time.Second); code != 1 {
			t.Fatalf("exit %d after a second SIGTERM, want 1:\n%s", code, a.log.String())
		}
		t.Logf("exited %s after the second signal", time.Since(t0).Round(time.Millisecond))
		if n := spooled(t, spool); n != 2 || !strings.Contains(a.log.String(), "second signal: exiting at once") {
			t.Fatalf("%d uploads in the spool, want the final batch's 2 (CPU and wall):\n%s", n, a.log.String())
		}

		// The next start sends them first.
		ok := newIngest(t, func() int { return http.StatusOK })
		b := startAgentBinary(t, bin, "--listen", filepath.Join(t.TempDir(), "s.sock"), "--upload-url", ok.URL, "--spool-dir", spool)
		b.waitLog(t, "spool loaded")
		for deadline := time.Now().Add(30 * time.Second); len(ok.delivered()) < 2; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the spooled uploads were not replayed:\n%s", b.log.String())
			}
		}
		b.signal(syscall.SIGTERM)
		if code := b.exitCode(t, 30*time.Second); code != 0 || spooled(t, spool) != 0 {
			t.Fatalf("after replay: exit %d, %d uploads still spooled:\n%s", code, spooled(t, spool), b.log.String())
		}
		for _, name := range ok.delivered() {
			if !strings.Contains(name, "pid="+strconv.Itoa(pid)) {
				t.Errorf("replayed upload %q is not of pid %d", name, pid)
			}
		}
	})
}
