//go:build soak

package soak

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// phase is how the recording endpoint behaves.
type phase int

const (
	phaseUp   phase = iota // 200, recorded
	phaseDown              // connection refused: nothing listens
	phaseSlow              // answers 503 after the client's upload timeout; ingests nothing
	phase500               // 500 Internal Server Error
)

func (p phase) String() string {
	return [...]string{"up", "down", "slow", "500"}[p]
}

// upload is one upload the endpoint accepted.
type upload struct {
	pid   int
	start int64 // the profile's TimeNanos: the batch's start
	kind  string
}

// endpoint is a Pyroscope-compatible /ingest on loopback that records what
// it accepts and can be put in any phase.
type endpoint struct {
	addr string
	slow time.Duration

	mu       sync.Mutex
	phase    phase
	srv      *http.Server
	accepted []upload
	requests map[phase]int
	bad      int // requests the endpoint could not read
}

var pidInName = regexp.MustCompile(`[{,]pid=(\d+)[,}]`)

func newEndpoint(slow time.Duration) (*endpoint, error) {
	e := &endpoint{slow: slow, requests: map[phase]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.addr = ln.Addr().String()
	e.serve(ln)
	return e, nil
}

func (e *endpoint) URL() string { return "http://" + e.addr }

func (e *endpoint) serve(ln net.Listener) {
	e.srv = &http.Server{Handler: http.HandlerFunc(e.handle)}
	go e.srv.Serve(ln)
}

// set moves the endpoint to p; down closes the listener, leaving it
// reopens it on the same address.
func (e *endpoint) set(p phase) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p == e.phase {
		return nil
	}
	if p == phaseDown {
		e.srv.Close()
	} else if e.phase == phaseDown {
		var ln net.Listener
		var err error
		for i := 0; i < 50; i++ { // the port may linger a moment after the close
			if ln, err = net.Listen("tcp", e.addr); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		e.serve(ln)
	}
	e.phase = p
	return nil
}

func (e *endpoint) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	e.mu.Lock()
	p := e.phase
	e.requests[p]++
	e.mu.Unlock()
	switch p {
	case phase500:
		http.Error(w, "soak: failing on purpose", http.StatusInternalServerError)
		return
	case phaseSlow:
		// Past the client's timeout, and not ingested: a server that keeps
		// what it never acknowledged makes duplicates whatever the client
		// does (at-least-once), which is not what this soak measures.
		select {
		case <-time.After(e.slow):
		case <-r.Context().Done():
		}
		http.Error(w, "soak: too slow on purpose", http.StatusServiceUnavailable)
		return
	}
	up, perr := parseUpload(r, body)
	if r.Context().Err() != nil {
		// The client gave up (its upload timeout) and will send it again.
		// One that gives up after this point gets a duplicate: uploads are
		// at-least-once across a timeout, and the soak reports them.
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil || perr != nil {
		e.bad++
		http.Error(w, "bad upload", http.StatusBadRequest)
		return
	}
	e.accepted = append(e.accepted, up)
}

func parseUpload(r *http.Request, body []byte) (upload, error) {
	m := pidInName.FindStringSubmatch(r.URL.Query().Get("name"))
	if m == nil {
		return upload{}, errors.New("no pid in name")
	}
	pid, _ := strconv.Atoi(m[1])
	p, err := profile.Parse(bytes.NewReader(body))
	if err != nil {
		return upload{}, err
	}
	kind := "cpu"
	for _, st := range p.SampleType {
		if st.Type == "wall" {
			kind = "wall"
		}
	}
	return upload{pid: pid, start: p.TimeNanos, kind: kind}, nil
}

func (e *endpoint) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.phase != phaseDown {
		e.srv.Shutdown(context.Background())
	}
}

func (e *endpoint) snapshot() ([]upload, map[phase]int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	req := map[phase]int{}
	for k, v := range e.requests {
		req[k] = v
	}
	return append([]upload(nil), e.accepted...), req, e.bad
}
