package agent

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
)

// client is a test client of the registration socket.
type client struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, path string) *client {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c, bufio.NewReader(c)}
}

func (c *client) ask(t *testing.T, line string) reply {
	t.Helper()
	c.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.c.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	ans, err := c.r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("read reply to %s: %v", line, err)
	}
	var r reply
	if err := json.Unmarshal(ans, &r); err != nil {
		t.Fatalf("reply %q: %v", ans, err)
	}
	return r
}

func startListening(t *testing.T) (*Agent, *memSink, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "bprof.sock")
	sink := &memSink{}
	a := newTestAgent(t, newFakeSource(false), Options{ApplicationName: "default", Period: time.Hour,
		Sinks: []Sink{sink}, Listen: sock})
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v, want a socket with 0660", fi.Mode())
	}
	return a, sink, sock
}

func TestSocketRegister(t *testing.T) {
	a, sink, sock := startListening(t)
	me := os.Getpid()
	c := dial(t, sock)
	for _, tt := range []struct {
		line   string
		ok     bool
		errHas string
	}{
		{`{"op":"stop"}`, false, "not registered"},
		{`{"op":"start","pid":1,"application_name":"evil"}`, false, "only itself"},
		{`not json`, false, "decode"},
		{`{"op":"start","labels":{"pid":"3"}}`, false, "reserved"},
		{`{"op":"start","application_name":"svc","period":45,"upload_timeout":10,"labels":{"env":"prod"},"pid":` + strconv.Itoa(me) + `}`, true, ""},
		{`{"op":"start","application_name":"svc","labels":{"env":"prod"}}`, true, ""},
	} {
		r := c.ask(t, tt.line)
		if r.OK != tt.ok || !strings.Contains(r.Error, tt.errHas) {
			t.Errorf("%s: reply %+v, want ok=%v and an error about %q", tt.line, r, tt.ok, tt.errHas)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if r := c.ask(t, `{"op":"stop"}`); !r.OK {
		t.Fatalf("stop: %+v", r)
	}
	bs := sink.all()
	if len(bs) != 1 || bs[0].PID != me || bs[0].ApplicationName != "svc" || bs[0].Labels["env"] != "prod" || !bs[0].Final {
		t.Fatalf("batches after stop: %v, want one final batch of this process as svc with env=prod", bs)
	}

	// Closing the connection unregisters too.
	c2 := dial(t, sock)
	if r := c2.ask(t, `{"op":"start","application_name":"svc2"}`); !r.OK {
		t.Fatalf("start: %+v", r)
	}
	time.Sleep(50 * time.Millisecond)
	c2.c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for len(sink.all()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if bs := sink.all(); len(bs) != 2 || bs[1].ApplicationName != "svc2" {
		t.Errorf("batches after close: %d, want a second one for svc2", len(bs))
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket still there after Stop: %v", err)
	}
}

// pythons returns python3 from PATH and, when pyenv is there, each of its
// CPython 3.7+ builds.
func pythons(t *testing.T) map[string]string {
	out := map[string]string{"python3": testenv.RequireCommand(t, "python3")}
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".pyenv")
	}
	bins, _ := filepath.Glob(filepath.Join(root, "versions", "3.*", "bin", "python3"))
	for _, bin := range bins {
		v := filepath.Base(filepath.Dir(filepath.Dir(bin)))
		parts := strings.Split(v, ".")
		if minor, err := strconv.Atoi(parts[1]); err == nil && minor >= 7 {
			out[v] = bin
		}
	}
	return out
}

func TestPythonClient(t *testing.T) {
	for name, py := range pythons(t) {
		t.Run(name, func(t *testing.T) { testPythonClient(t, py) })
	}
}

func testPythonClient(t *testing.T, py string) {
	a, sink, sock := startListening(t)
	defer a.Stop()
	script := `
import os, sys, time
from bprof_client import Profiler, ProfilerError
print(os.getpid(), flush=True)
p = Profiler(application_name="my-app", period=45, upload_timeout=10, labels={"env": "prod"})
p.start()
time.sleep(0.3)
p.stop()
try:
    Profiler(application_name="x", labels={"pid": "1"}).start()
    sys.exit("reserved label accepted")
except ProfilerError as e:
    print("refused:", e, flush=True)
`
	cmd := exec.Command(py, "-c", script)
	cmd.Env = append(os.Environ(), "BPROF_SOCKET="+sock, "PYTHONPATH="+filepath.Join("..", "..", "python"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	pid, _ := strconv.Atoi(lines[0])
	if len(lines) != 2 || !strings.Contains(lines[1], "reserved") {
		t.Errorf("python printed %q, want its pid and a refusal", out)
	}
	bs := sink.all()
	if len(bs) != 1 {
		t.Fatalf("%d batches, want 1", len(bs))
	}
	b := bs[0]
	if b.PID != pid || b.ApplicationName != "my-app" || b.Labels["env"] != "prod" || b.Period != 45*time.Second ||
		b.UploadTimeout != 10*time.Second || b.Samples == 0 {
		t.Errorf("batch %+v, want pid %d as my-app, env=prod, 45s, 10s, with samples", b, pid)
	}
}
