package agent

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// ingest is one request the test server received.
type ingest struct {
	query   map[string]string
	types   []string
	start   string // the batch's start label, from the pprof comments
	samples int64
	labels  bool // every sample has pid and thread_id as string labels, no numeric ones
	status  int
	n       int // order of arrival
}

// ingestServer speaks /ingest; answer picks the status of the n-th request
// (from 0) and may block.
type ingestServer struct {
	t      *testing.T
	mu     sync.Mutex
	n      int
	got    []ingest // every request
	answer func(n int, r *http.Request) int
}

func (s *ingestServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/ingest" || r.Method != http.MethodPost {
		s.t.Errorf("request %s %s, want POST /ingest", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		s.t.Errorf("body is not gzipped")
	}
	p, err := profile.Parse(bytes.NewReader(body))
	if err != nil {
		s.t.Errorf("parse body: %v", err)
		http.Error(w, "bad profile", http.StatusBadRequest)
		return
	}
	in := ingest{query: map[string]string{}, samples: sampleCount(p)}
	for k, v := range r.URL.Query() {
		in.query[k] = v[0]
	}
	for _, st := range p.SampleType {
		in.types = append(in.types, st.Type+"/"+st.Unit)
	}
	in.labels = true
	for _, smp := range p.Sample {
		in.labels = in.labels && len(smp.NumLabel) == 0 && len(smp.Label["pid"]) == 1 && len(smp.Label["thread_id"]) == 1
	}
	for _, c := range p.Comments {
		if v, ok := strings.CutPrefix(c, "start="); ok {
			in.start = v
		}
	}
	s.mu.Lock()
	n := s.n
	s.n++
	s.mu.Unlock()
	in.status, in.n = http.StatusOK, n
	if s.answer != nil {
		in.status = s.answer(n, r)
	}
	s.mu.Lock()
	s.got = append(s.got, in)
	s.mu.Unlock()
	w.WriteHeader(in.status)
}

// delivered returns the requests answered 200.
func (s *ingestServer) delivered() []ingest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ingest
	for _, in := range s.got {
		if in.status == http.StatusOK {
			out = append(out, in)
		}
	}
	return out
}

func newPyroscope(t *testing.T, url, spool string, max int64) *PyroscopeSink {
	t.Helper()
	s, err := NewPyroscopeSink(PyroscopeOptions{URL: url, SpoolDir: spool, SpoolMax: max})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkOnceInOrder checks that every batch of sink arrived once, CPU then
// wall, in order of start.
func checkOnceInOrder(t *testing.T, got []ingest, batches []*Batch, wall bool) {
	t.Helper()
	var want []string
	for _, b := range batches {
		st := b.Start.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")
		want = append(want, "cpu "+st)
		if wall {
			want = append(want, "wall "+st)
		}
	}
	var have []string
	for _, in := range got {
		kind := "cpu"
		if slices.Contains(in.types, "wall/nanoseconds") {
			kind = "wall"
		}
		have = append(have, kind+" "+in.start)
	}
	if !slices.Equal(have, want) {
		t.Errorf("delivered:\n%q\nwant every batch once, in order:\n%q", have, want)
	}
}

func TestPyroscopeIngest(t *testing.T) {
	srv := &ingestServer{t: t}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	src := newFakeSource(true)
	mem := &memSink{}
	a := newTestAgent(t, src, Options{ApplicationName: "my-app", Period: 200 * time.Millisecond,
		Labels: map[string]string{"env": "prod", "team": "a b"}, PIDs: []int{77},
		Sinks: []Sink{newPyroscope(t, ts.URL, "", 0), mem}})
	time.Sleep(500 * time.Millisecond)
	a.Stop()
	got := srv.delivered()
	checkOnceInOrder(t, got, mem.all(), true)
	wantName := "my-app{env=prod,hostname=" + a.host + ",pid=77,team=a b}"
	for i, in := range got {
		q := in.query
		if q["name"] != wantName || q["format"] != "pprof" || q["spyName"] != "bprof" || q["sampleRate"] != "100" {
			t.Errorf("request %d query %v, want name %q, format pprof, spyName bprof, sampleRate 100", i, q, wantName)
		}
		b := mem.all()[i/2]
		if q["from"] != jsonNum(int(b.Start.Unix())) || q["until"] != jsonNum(int(b.End.Unix())) {
			t.Errorf("request %d from/until %s/%s, batch %v-%v", i, q["from"], q["until"], b.Start, b.End)
		}
		want := []string{"samples/count", "cpu/nanoseconds"}
		if i%2 == 1 {
			want = []string{"wall/nanoseconds"}
		}
		if !slices.Equal(in.types, want) {
			t.Errorf("request %d types %q, want %q", i, in.types, want)
		}
		if !in.labels {
			t.Errorf("request %d: want pid and thread_id as string labels (Pyroscope drops numeric ones)", i)
		}
		// The first value column: samples for CPU, nanoseconds for wall.
		want1 := b.Samples
		if i%2 == 1 {
			want1 = 0
			w := valueIndex(b.Profile, "wall")
			for _, s := range b.Profile.Sample {
				want1 += s.Value[w]
			}
		}
		if in.samples != want1 {
			t.Errorf("request %d: first column sums to %d, the batch's to %d", i, in.samples, want1)
		}
	}
}

func TestPyroscopeRetry(t *testing.T) {
	var mu sync.Mutex
	down := true
	srv := &ingestServer{t: t, answer: func(int, *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	mem := &memSink{}
	py := newPyroscope(t, ts.URL, t.TempDir(), 0)
	a := newTestAgent(t, newFakeSource(false), Options{Period: 100 * time.Millisecond, PIDs: []int{5},
		Sinks: []Sink{py, mem}})
	time.Sleep(450 * time.Millisecond) // several periods down
	mu.Lock()
	down = false
	mu.Unlock()
	time.Sleep(400 * time.Millisecond)
	a.Stop()
	checkOnceInOrder(t, srv.delivered(), mem.all(), false)
	if c := py.Counts(); c.Retries == 0 || c.Rejected != 0 {
		t.Errorf("counts %+v, want retries and no rejections", c)
	}
}

func TestPyroscopeTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var first time.Duration
	srv := &ingestServer{t: t, answer: func(n int, r *http.Request) int {
		if n == 0 {
			t0 := time.Now()
			select {
			case <-r.Context().Done():
			case <-release:
			}
			first = time.Since(t0)
			return http.StatusOK // too late: the client gave up
		}
		return http.StatusOK
	}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	mem := &memSink{}
	a := newTestAgent(t, newFakeSource(false), Options{Period: 200 * time.Millisecond, UploadTimeout: 100 * time.Millisecond,
		PIDs: []int{5}, Sinks: []Sink{newPyroscope(t, ts.URL, "", 0), mem}})
	time.Sleep(600 * time.Millisecond)
	a.Stop()
	srv.mu.Lock()
	got := slices.Clone(srv.got)
	srv.mu.Unlock()
	slices.SortFunc(got, func(a, b ingest) int { return a.n - b.n })
	if len(got) < 2 || got[0].start != got[1].start {
		t.Fatalf("requests %v: want the first one cut and retried", got)
	}
	if first < 80*time.Millisecond || first > time.Second {
		t.Errorf("first request lasted %v, want it cut at the 100ms upload timeout", first)
	}
	checkOnceInOrder(t, got[1:], mem.all(), false)
}

func TestPyroscopeRejected(t *testing.T) {
	srv := &ingestServer{t: t, answer: func(n int, _ *http.Request) int {
		if n == 0 {
			return http.StatusUnprocessableEntity
		}
		return http.StatusOK
	}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	mem := &memSink{}
	py := newPyroscope(t, ts.URL, "", 0)
	a := newTestAgent(t, newFakeSource(false), Options{Period: 100 * time.Millisecond, PIDs: []int{5}, Sinks: []Sink{py, mem}})
	time.Sleep(250 * time.Millisecond)
	a.Stop()
	if c := py.Counts(); c.Rejected != 1 || c.Retries != 0 {
		t.Errorf("counts %+v, want 1 rejected, no retries", c)
	}
	checkOnceInOrder(t, srv.delivered(), mem.all()[1:], false)
}

func TestPyroscopeSpoolRestart(t *testing.T) {
	dir := t.TempDir()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer down.Close()
	mem := &memSink{}
	a := newTestAgent(t, newFakeSource(false), Options{Period: 100 * time.Millisecond, PIDs: []int{9},
		Sinks: []Sink{newPyroscope(t, down.URL, dir, 0), mem}})
	time.Sleep(350 * time.Millisecond)
	a.Stop()
	left, _ := os.ReadDir(dir)
	if len(left) != len(mem.all()) || len(left) < 3 {
		t.Fatalf("%d files spooled for %d batches, want one each, at least 3", len(left), len(mem.all()))
	}

	srv := &ingestServer{t: t}
	up := httptest.NewServer(srv)
	defer up.Close()
	py := newPyroscope(t, up.URL, dir, 0)
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.delivered()) < len(left) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	py.Close()
	checkOnceInOrder(t, srv.delivered(), mem.all(), false)
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("%d files left in the spool after delivery", len(left))
	}
}

func TestSpoolBound(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		s := newSpool(dir, 1000)
		if _, err := s.load(); err != nil {
			t.Fatal(err)
		}
		var dropped int
		for i := range 10 {
			n, err := s.push(&upload{Name: "a", From: int64(i), Body: bytes.Repeat([]byte{1}, 200)})
			if err != nil {
				t.Fatal(err)
			}
			dropped += n
		}
		n, size := s.len()
		if size > 1000 || n+dropped != 10 || dropped == 0 {
			t.Errorf("dir %q: %d uploads of %d bytes kept, %d dropped; want under 1000 bytes, oldest dropped", dir, n, size, dropped)
		}
		_, u, ok, err := s.head()
		if !ok || err != nil || u.From != int64(dropped) {
			t.Errorf("dir %q: head is %+v (%v), want the oldest kept, from=%d", dir, u, err, dropped)
		}
	}
}

func TestBackoff(t *testing.T) {
	for _, tt := range []struct {
		n      int
		period time.Duration
		want   time.Duration
	}{
		{1, 45 * time.Second, time.Second},
		{2, 45 * time.Second, 2 * time.Second},
		{6, 45 * time.Second, 32 * time.Second},
		{7, 45 * time.Second, 45 * time.Second},
		{100, 45 * time.Second, 45 * time.Second},
		{1, 160 * time.Millisecond, 10 * time.Millisecond},
		{3, 160 * time.Millisecond, 40 * time.Millisecond},
	} {
		if got := backoff(tt.n, tt.period); got != tt.want {
			t.Errorf("backoff(%d, %v) = %v, want %v", tt.n, tt.period, got, tt.want)
		}
	}
}

func TestSeriesName(t *testing.T) {
	for _, tt := range []struct {
		app    string
		labels map[string]string
		want   string
	}{
		{"app", nil, "app{hostname=h,pid=1}"},
		{"my-app", map[string]string{"env": "prod"}, "my-app{env=prod,hostname=h,pid=1}"},
		{"a{b}", map[string]string{"k-1": "x,y=z", "9x": "v"}, "a_b_{_9x=v,hostname=h,k_1=x_y_z,pid=1}"},
	} {
		b := &Batch{ApplicationName: tt.app, Labels: tt.labels, Hostname: "h", PID: 1}
		if got := seriesName(b); got != tt.want {
			t.Errorf("seriesName(%q, %v) = %q, want %q", tt.app, tt.labels, got, tt.want)
		}
	}
}

func TestNewPyroscopeSinkURL(t *testing.T) {
	for _, u := range []string{"", "localhost:4040", "ftp://x", "http://"} {
		if _, err := NewPyroscopeSink(PyroscopeOptions{URL: u}); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
}
