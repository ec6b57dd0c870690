package agent

import (
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startListeningTimeout is startListening with a short request timeout and
// the agent's log kept.
func startListeningTimeout(t *testing.T, timeout time.Duration) (*Agent, string, *syncBuffer) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "bprof.sock")
	var log syncBuffer
	a := newTestAgent(t, newFakeSource(false), Options{Period: time.Hour, Sinks: []Sink{&memSink{}}, Listen: sock,
		RequestTimeout: timeout, Log: slog.New(slog.NewTextHandler(&log, nil))})
	return a, sock, &log
}

// readReply reads one answer and then expects the agent to close the
// connection.
func readReplyThenEOF(t *testing.T, c *client, within time.Duration) reply {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(within))
	ans, err := c.r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("no answer within %s: %v", within, err)
	}
	var r reply
	if err := json.Unmarshal(ans, &r); err != nil {
		t.Fatalf("answer %q: %v", ans, err)
	}
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Errorf("after the error answer: %v, want the connection closed", err)
	}
	return r
}

// TestSocketBadInput: clients that send garbage, too much, or nothing get
// a clear error, and a good client is served all the while.
func TestSocketBadInput(t *testing.T) {
	a, sock, log := startListeningTimeout(t, 300*time.Millisecond)
	defer a.Stop()

	silent := dial(t, sock) // connects and never writes
	half := dial(t, sock)   // writes half a line and stalls
	half.c.Write([]byte(`{"op":"sta`))
	big := dial(t, sock)
	go big.c.Write([]byte(`{"op":"start","application_name":"` + strings.Repeat("x", maxMessage+10) + "\"}\n"))

	// A good client, meanwhile, is answered at once.
	good := dial(t, sock)
	t0 := time.Now()
	if r := good.ask(t, `{"op":"start","application_name":"good"}`); !r.OK {
		t.Fatalf("good client: %+v", r)
	}
	if d := time.Since(t0); d > 200*time.Millisecond {
		t.Errorf("good client answered after %s, with bad clients connected", d)
	}
	// Malformed requests get an error each, and the connection stays usable.
	for _, line := range []string{`not json`, `[]`, `{"op":"fly"}`, `{"op":"start","period":-1}`, "\x00\xff\xfe",
		`{"op":"start","labels":{"a=b":"c"}}`, `{"op":"start","labels":{"k":"` + strings.Repeat("v", 300) + `"}}`, `{} {}`} {
		if r := good.ask(t, line); r.OK || r.Error == "" {
			t.Errorf("%.40q: answer %+v, want an error", line, r)
		}
	}
	if r := good.ask(t, `{"op":"start","application_name":"good"}`); !r.OK {
		t.Errorf("good client after bad requests: %+v", r)
	}

	if r := readReplyThenEOF(t, big, 5*time.Second); !strings.Contains(r.Error, "longer than") {
		t.Errorf("oversized request: %+v, want an error about its length", r)
	}
	for name, c := range map[string]*client{"silent": silent, "half a line": half} {
		if r := readReplyThenEOF(t, c, 5*time.Second); !strings.Contains(r.Error, "no complete request") {
			t.Errorf("%s client: %+v, want a timeout error", name, r)
		}
	}
	// The registered client, quiet since, is not timed out.
	if r := good.ask(t, `{"op":"stop"}`); !r.OK {
		t.Errorf("registered client after a quiet spell: %+v", r)
	}
	if !strings.Contains(log.String(), "registration connection timed out") {
		t.Errorf("no warning for the timed-out clients:\n%s", log.String())
	}
}

// TestSocketStopWithStuckClients: Stop returns promptly with a client that
// never writes and one that floods requests without reading the answers.
func TestSocketStopWithStuckClients(t *testing.T) {
	a, sock, log := startListeningTimeout(t, time.Hour)
	dial(t, sock)
	flood := dial(t, sock)
	go func() {
		line := []byte(`{"op":"bogus"}` + "\n")
		for {
			if _, err := flood.c.Write(line); err != nil {
				return
			}
		}
	}()
	// Wait until the flood is being answered (soon the answers fill the
	// socket's buffer and the handler blocks writing).
	waitFor(t, "the flood to be answered", func() bool { return strings.Count(log.String(), "registration request refused") >= 100 })
	t0 := time.Now()
	done := make(chan error, 1)
	go func() { done <- a.Stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(replyTimeout + 5*time.Second):
		t.Fatal("Stop blocked by stuck clients")
	}
	t.Logf("Stop took %s", time.Since(t0).Round(time.Millisecond))
}
