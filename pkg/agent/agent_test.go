package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// newTestAgent starts an agent over a fake source in which every PID is alive.
func newTestAgent(t *testing.T, src *fakeSource, opts Options) *Agent {
	t.Helper()
	opts.Source = src
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	a.alive = func(int) bool { return true }
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestPeriods(t *testing.T) {
	src := newFakeSource(false)
	sink := &memSink{}
	a := newTestAgent(t, src, Options{
		ApplicationName: "my-app", Period: 300 * time.Millisecond,
		Labels: map[string]string{"env": "prod"}, PIDs: []int{1001, 1002}, Sinks: []Sink{sink},
	})
	time.Sleep(1050 * time.Millisecond) // boundaries at 300, 600, 900 ms; the next would be at 1200
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if !sink.closed || !src.closed {
		t.Errorf("after Stop: sink closed %v, source closed %v; want both", sink.closed, src.closed)
	}
	var sum int64
	per := map[int][]*Batch{}
	for _, b := range sink.all() {
		sum += b.Samples
		per[b.PID] = append(per[b.PID], b)
		if err := b.Profile.CheckValid(); err != nil {
			t.Errorf("batch %d@%v: %v", b.PID, b.Start, err)
		}
		if got := sampleCount(b.Profile); got != b.Samples {
			t.Errorf("batch Samples = %d, profile has %d", b.Samples, got)
		}
		for _, s := range b.Profile.Sample {
			if samplePID(s) != b.PID {
				t.Errorf("batch of %d holds a sample of %d", b.PID, samplePID(s))
			}
		}
		for _, want := range []string{"application_name=my-app", "env=prod", "pid=" + itoa(b.PID),
			"hostname=" + a.host, "start=" + b.Start.UTC().Format(time.RFC3339Nano)} {
			if !slices.Contains(b.Profile.Comments, want) {
				t.Errorf("batch comments %q lack %q", b.Profile.Comments, want)
			}
		}
	}
	if total := src.Total(); sum != total {
		t.Errorf("batches hold %d samples, the source made %d", sum, total)
	}
	for _, pid := range []int{1001, 1002} {
		bs := per[pid]
		if len(bs) != 4 {
			t.Fatalf("pid %d: %d batches, want 3 full + 1 partial", pid, len(bs))
		}
		for i, b := range bs {
			if i > 0 && !b.Start.Equal(bs[i-1].End) {
				t.Errorf("pid %d batch %d starts at %v, previous ended at %v", pid, i, b.Start, bs[i-1].End)
			}
			span := b.End.Sub(b.Start)
			if full := i < 3; full && (span < 300*time.Millisecond || span > 500*time.Millisecond || b.Final) {
				t.Errorf("pid %d batch %d: span %v final %v, want a full period", pid, i, span, b.Final)
			}
		}
		if last := bs[3]; !last.Final || last.End.Sub(last.Start) >= 300*time.Millisecond {
			t.Errorf("pid %d last batch: final %v span %v, want a final partial period", pid, last.Final, last.End.Sub(last.Start))
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func jsonNum(n int) string { return strconv.Itoa(n) }

func TestRegisterUnregister(t *testing.T) {
	src := newFakeSource(false)
	sink := &memSink{}
	a := newTestAgent(t, src, Options{ApplicationName: "default", Period: time.Hour,
		Labels: map[string]string{"dc": "eu"}, Sinks: []Sink{sink}})
	if err := a.Register(2001, Target{ApplicationName: "svc", Labels: map[string]string{"env": "test"}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := a.Unregister(2001); err != nil {
		t.Fatal(err)
	}
	bs := sink.all()
	if len(bs) != 1 {
		t.Fatalf("%d batches after Unregister, want 1 (the last one, at once)", len(bs))
	}
	b := bs[0]
	if b.ApplicationName != "svc" || b.Labels["env"] != "test" || b.Labels["dc"] != "eu" || !b.Final || b.Samples == 0 {
		t.Errorf("batch = %s %v final=%v samples=%d; want svc, env=test and dc=eu, final, samples", b.ApplicationName, b.Labels, b.Final, b.Samples)
	}
	if err := a.Unregister(2001); err == nil {
		t.Error("second Unregister succeeded")
	}
	for _, bad := range []Target{
		{Labels: map[string]string{"pid": "1"}},
		{Period: time.Microsecond},
		{ApplicationName: strings.Repeat("x", 1000)},
	} {
		if err := a.Register(2002, bad); err == nil {
			t.Errorf("Register(%+v) succeeded", bad)
		}
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(sink.all()); got != 1 {
		t.Errorf("%d batches after Stop, want still 1", got)
	}
}

func TestTargetExit(t *testing.T) {
	src := newFakeSource(false)
	sink := &memSink{}
	var dead atomic.Bool
	a, err := New(Options{Period: 100 * time.Millisecond, PIDs: []int{3001}, Sinks: []Sink{sink}, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	a.alive = func(int) bool { return !dead.Load() }
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	// A full batch first (the agent runs), then the target exits: the next
	// cut sees it, ships what its last period holds as the final batch and
	// drops it, and Stop ships nothing more. A last period with no sample
	// (the exit came right after a batch) ships nothing, so no batch is
	// final then. Waited for, not slept: under load the periods stretch.
	waitBatches(t, sink, "a first batch", func(bs []*Batch) bool { return len(bs) > 0 })
	src.Exit(3001) // no sample after its death, as from a real process
	dead.Store(true)
	exited := time.Now() // a cut after this sees the exit
	for deadline := time.Now().Add(10 * time.Second); !src.Removed(3001); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the exited target was not removed within 10 s")
		}
	}
	n := len(sink.all())
	a.Stop()
	bs := sink.all()
	if len(bs) != n {
		t.Fatalf("%d batches before Stop and %d after, want none more after the target's exit", n, len(bs))
	}
	var samples int64
	for i, b := range bs {
		if b.Final && i != len(bs)-1 {
			t.Errorf("batch %d of %d is final; only the last may be", i+1, len(bs))
		}
		if b.End.After(exited) && !b.Final {
			t.Errorf("batch %d of %d, cut after the exit, is not final", i+1, len(bs))
		}
		samples += b.Samples
	}
	if len(a.targets) != 0 {
		t.Errorf("targets left after exit: %v", a.targets)
	}
	if got := src.Total(); samples != got {
		t.Errorf("batches hold %d samples, source made %d", samples, got)
	}
}

// waitBatches waits up to 10 s until the batches the sink got satisfy done.
func waitBatches(t *testing.T, sink *memSink, what string, done func([]*Batch) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if bs := sink.all(); len(bs) > 0 && done(bs) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10 s: %d batches", what, len(sink.all()))
		}
	}
}

func TestDirSink(t *testing.T) {
	dir := t.TempDir()
	ds, err := NewDirSink(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource(true)
	a := newTestAgent(t, src, Options{ApplicationName: "app/x", Period: 150 * time.Millisecond,
		Labels: map[string]string{"env": "prod"}, PIDs: []int{42}, Sinks: []Sink{ds}})
	time.Sleep(400 * time.Millisecond)
	a.Stop()
	jsons, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(jsons) < 3 {
		t.Fatalf("%d sidecars, want at least 3", len(jsons))
	}
	var sum int64
	for _, js := range jsons {
		data, err := os.ReadFile(js)
		if err != nil {
			t.Fatal(err)
		}
		var sc sidecar
		if err := json.Unmarshal(data, &sc); err != nil {
			t.Fatal(err)
		}
		stem := strings.TrimSuffix(filepath.Base(js), ".json")
		start, err := time.Parse(time.RFC3339Nano, sc.Start)
		if err != nil {
			t.Fatal(err)
		}
		if want := "app_x-42-" + jsonNum(int(start.UnixNano())); stem != want {
			t.Errorf("stem %s, want %s", stem, want)
		}
		if sc.ApplicationName != "app/x" || sc.PID != 42 || sc.Labels["env"] != "prod" || sc.Hostname == "" || sc.End == "" {
			t.Errorf("sidecar %s = %+v", js, sc)
		}
		f, err := os.Open(filepath.Join(dir, stem+".pb.gz"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := profile.Parse(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := sampleCount(p); got != sc.Samples {
			t.Errorf("%s: sidecar says %d samples, profile has %d", stem, sc.Samples, got)
		}
		if !slices.Contains(p.Comments, "env=prod") {
			t.Errorf("%s: comments %q lack env=prod", stem, p.Comments)
		}
		sum += sc.Samples
	}
	if sum != src.Total() {
		t.Errorf("batches hold %d samples, the source made %d", sum, src.Total())
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmp) > 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
		want string
	}{
		{"no source", Options{}, "no profile source"},
		{"reserved label", Options{Source: newFakeSource(false), Labels: map[string]string{"hostname": "x"}}, "reserved"},
		{"short period", Options{Source: newFakeSource(false), Period: time.Nanosecond}, "period"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error about %q", err, tt.want)
			}
		})
	}
}
