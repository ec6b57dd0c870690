package agent

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/memory"
	"github.com/google/pprof/profile"
)

// TestUploadsMemory: a batch with memory types is three uploads: CPU, wall,
// and memory shaped like a Go heap profile (the four types, period type
// space/bytes, the sampling interval as period), without the CPU samples. A batch without memory types has no memory upload.
func TestUploadsMemory(t *testing.T) {
	fn := &profile.Function{ID: 1, Name: "f"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	types := []string{"samples", "cpu", "wall", "alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}
	units := []string{"count", "nanoseconds", "nanoseconds", "count", "bytes", "count", "bytes"}
	p := &profile.Profile{
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
		Location:   []*profile.Location{loc},
		Function:   []*profile.Function{fn},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{loc}, Value: []int64{1, 10_000_000, 10_000_000, 0, 0, 0, 0}},
			{Location: []*profile.Location{loc}, Value: []int64{0, 0, 0, 17, 524288, 0, 0}},
			{Location: []*profile.Location{loc}, Value: []int64{0, 0, 0, 0, 0, 5, 1 << 20}},
		},
	}
	for i, typ := range types {
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: typ, Unit: units[i]})
	}
	b := &Batch{ApplicationName: "app", PID: 7, Hostname: "h", Start: time.Unix(100, 0), End: time.Unix(110, 0),
		Period: 10 * time.Second, UploadTimeout: time.Second, Profile: p, AllocSampleBytes: 512 << 10}
	ups, err := uploadsOf(b, new(export.Encoder))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, u := range ups {
		kinds = append(kinds, u.Kind)
	}
	if len(ups) != 3 || ups[2].Kind != "memory" {
		t.Fatalf("uploads %v, want cpu, wall, memory", kinds)
	}
	m, err := profile.Parse(bytes.NewReader(ups[2].Body))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range m.SampleType {
		got = append(got, st.Type+"/"+st.Unit)
	}
	want := "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes"
	if g := join(got); g != want {
		t.Errorf("memory upload types %s, want %s", g, want)
	}
	if m.PeriodType == nil || m.PeriodType.Type != "space" || m.PeriodType.Unit != "bytes" || m.Period != 512<<10 {
		t.Errorf("memory upload period %v %d, want space/bytes 524288", m.PeriodType, m.Period)
	}
	var alloc, inuse int64
	for _, s := range m.Sample {
		alloc += s.Value[1]
		inuse += s.Value[3]
	}
	if alloc != 524288 || inuse != 1<<20 {
		t.Errorf("memory upload: alloc_space %d, inuse_space %d; want 524288, 1048576", alloc, inuse)
	}
	cpu, err := profile.Parse(bytes.NewReader(ups[0].Body))
	if err != nil {
		t.Fatal(err)
	}
	if len(cpu.Sample) != 1 || len(cpu.SampleType) != 2 {
		t.Errorf("cpu upload: %d samples, %d types; want the CPU sample only, samples and cpu", len(cpu.Sample), len(cpu.SampleType))
	}

	// Without memory types: no memory upload.
	p2 := p.Copy()
	p2.SampleType = p2.SampleType[:3]
	for _, s := range p2.Sample {
		s.Value = s.Value[:3]
	}
	b.Profile = p2
	if ups, err := uploadsOf(b, new(export.Encoder)); err != nil || len(ups) != 2 {
		t.Errorf("without memory types: %d uploads (%v), want 2", len(ups), err)
	}
}

func join(ss []string) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}

// fakeMemory is an agent.Memory that hands out a real copy of the library
// and records what was attached.
type fakeMemory struct {
	lib      string
	placeErr error
	mu       sync.Mutex
	attached []int
}

func (m *fakeMemory) Place(pid int) (string, error) { return m.lib, m.placeErr }
func (m *fakeMemory) Attach(pid int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attached = append(m.attached, pid)
	return nil
}
func (m *fakeMemory) SampleBytes() int64 { return 512 << 10 }

// TestSocketMemory: the memory op is refused before start and by an agent
// without memory profiles; start's answer offers the library; a client's
// load error is accepted (and logged), its success attaches.
func TestSocketMemory(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "bprof.sock")
	mem := &fakeMemory{lib: "/tmp/bprof-alloc-x.so"}
	a := newTestAgent(t, newFakeSource(false), Options{Period: time.Hour, Sinks: []Sink{&memSink{}}, Listen: sock, Memory: mem})
	defer a.Stop()
	c := dial(t, sock)
	if r := c.ask(t, `{"op":"memory"}`); r.OK || !strings.Contains(r.Error, "not registered") {
		t.Errorf("memory before start: %+v", r)
	}
	r := c.ask(t, `{"op":"start"}`)
	if !r.OK || r.Memory == nil || r.Memory.Library != mem.lib {
		t.Errorf("start: %+v, want the library offered", r)
	}
	if r := c.ask(t, `{"op":"memory","error":"no ctypes"}`); !r.OK {
		t.Errorf("memory with the client's error: %+v", r)
	}
	if r := c.ask(t, `{"op":"memory"}`); !r.OK {
		t.Errorf("memory: %+v", r)
	}
	mem.mu.Lock()
	if len(mem.attached) != 1 || mem.attached[0] != os.Getpid() {
		t.Errorf("attached %v, want this process once", mem.attached)
	}
	mem.mu.Unlock()

	sock2 := filepath.Join(t.TempDir(), "bprof.sock")
	b := newTestAgent(t, newFakeSource(false), Options{Period: time.Hour, Sinks: []Sink{&memSink{}}, Listen: sock2})
	defer b.Stop()
	c2 := dial(t, sock2)
	if r := c2.ask(t, `{"op":"start"}`); !r.OK || r.Memory != nil {
		t.Errorf("start without --memory: %+v", r)
	}
	if r := c2.ask(t, `{"op":"memory"}`); r.OK || !strings.Contains(r.Error, "--memory") {
		t.Errorf("memory without --memory: %+v", r)
	}
}

// TestPythonClientMemory: bprof_client loads the offered library and says
// so (the agent attaches); memory=False declines; a library the agent could
// not place is a warning, and profiling goes on.
func TestPythonClientMemory(t *testing.T) {
	py := filepath.Join(os.Getenv("HOME"), ".pyenv", "versions", "3.11.7", "bin", "python3")
	if _, err := os.Stat(py); err != nil {
		py = testenv.RequireCommand(t, "python3")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	lib := filepath.Join(dir, memory.LibraryName())
	if err := os.WriteFile(lib, memory.Library(), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `
import os, sys, warnings
from bprof_client import Profiler, _alloc
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as w:
    p = Profiler(memory=(sys.argv[1] == "yes"))
    p.start()
    print(os.getpid(), _alloc.loaded(), len(w), w[0].message if w else "-", flush=True)
    p.stop()
`
	for _, tc := range []struct {
		name, arg string
		placeErr  error
		loaded    bool
		warn      string
	}{
		{"offered", "yes", nil, true, ""},
		{"declined", "no", nil, false, ""},
		{"not placed", "yes", errors.New("read-only file system"), false, "read-only file system"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "bprof.sock")
			mem := &fakeMemory{lib: lib, placeErr: tc.placeErr}
			a := newTestAgent(t, newFakeSource(false), Options{Period: time.Hour, Sinks: []Sink{&memSink{}}, Listen: sock, Memory: mem})
			defer a.Stop()
			cmd := exec.Command(py, "-c", script, tc.arg)
			cmd.Env = append(os.Environ(), "BPROF_SOCKET="+sock, "PYTHONPATH="+filepath.Join("..", "..", "python"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("python: %v\n%s", err, out)
			}
			f := strings.Fields(string(out))
			if len(f) < 3 {
				t.Fatalf("python printed %q", out)
			}
			pid, _ := strconv.Atoi(f[0])
			if loaded := f[1] == lib; loaded != tc.loaded {
				t.Errorf("loaded %s, want loaded=%v", f[1], tc.loaded)
			}
			mem.mu.Lock()
			attached := len(mem.attached) == 1 && mem.attached[0] == pid
			mem.mu.Unlock()
			if attached != tc.loaded {
				t.Errorf("agent attached %v, want %v", mem.attached, tc.loaded)
			}
			if tc.warn != "" && !strings.Contains(string(out), tc.warn) {
				t.Errorf("no warning with %q: %s", tc.warn, out)
			}
			if tc.warn == "" && f[2] != "0" {
				t.Errorf("warnings: %s", out)
			}
		})
	}
}
