package flamegraph

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

func TestReadBytes(t *testing.T) {
	p := smallProfile(t)
	var gz, raw bytes.Buffer
	p.Write(&gz)
	p.WriteUncompressed(&raw)
	var zfold bytes.Buffer
	zw := gzip.NewWriter(&zfold)
	zw.Write([]byte("a;b 3\n"))
	zw.Close()
	tests := []struct {
		name    string
		data    []byte
		samples int
		err     string
	}{
		{"pprof gzipped", gz.Bytes(), 5, ""},
		{"pprof raw", raw.Bytes(), 5, ""},
		{"folded", []byte("# comment\na;b;c 3\na;b 2\n\n"), 2, ""},
		{"folded gzipped", zfold.Bytes(), 1, ""},
		{"neither", []byte("hello world\nsecond"), 0, `not a pprof profile nor folded stacks (first line: "hello world")`},
		{"bad count", []byte("a;b 3\na;b x\n"), 0, `line 2: bad count "x"`},
		{"empty file", nil, 0, "empty file"},
		{"empty folded", []byte("a;b 0\n"), 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadBytes(tt.data)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Sample) != tt.samples {
				t.Errorf("%d samples, want %d", len(got.Sample), tt.samples)
			}
		})
	}
}

func TestExtractErrors(t *testing.T) {
	p := smallProfile(t)
	if _, err := Extract(p, Options{SampleType: "alloc"}); err == nil || !strings.Contains(err.Error(), `no sample type "alloc" (have samples, cpu, wall)`) {
		t.Errorf("unknown sample type: %v", err)
	}
	if _, err := Extract(p, Options{Thread: "nope"}); !errors.Is(err, ErrNoSamples) {
		t.Errorf("unknown thread: %v", err)
	}
	s, err := Extract(p, Options{Thread: "101"})
	if err != nil || s.Total != 50_000_000 {
		t.Errorf("thread 101: %v, total %v", err, s)
	}
}

func TestMinWidth(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want MinWidth
	}{{"0.001", MinWidth{0.001, false}}, {"0.1%", MinWidth{0.001, false}}, {"2px", MinWidth{2, true}}, {"3", MinWidth{3, true}}, {"0", MinWidth{0, false}}} {
		got, err := ParseMinWidth(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseMinWidth(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := ParseMinWidth("wide"); err == nil {
		t.Error("ParseMinWidth(wide) succeeded")
	}
	// 200 narrow leaves under one frame merge into "[200 narrow frames]" and keep their value.
	var b strings.Builder
	fmt.Fprintf(&b, "main;big 100000\n")
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "main;f%03d 10\n", i)
	}
	p, err := ParseFolded(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Extract(p, Options{})
	g := newGraph(s, Config{MinWidth: MinWidth{Value: 0.01}})
	var names []string
	for i := range g.rects {
		n, _ := g.name(&g.rects[i])
		names = append(names, fmt.Sprintf("%s=%d", n, g.rects[i].total))
	}
	if got := strings.Join(names, " "); got != "all=102000 main=102000 big=100000 [200 narrow frames]=2000" {
		t.Errorf("rects: %s", got)
	}
}

func TestDiff(t *testing.T) {
	base, _ := Extract(smallProfile(t), Options{})
	p := smallProfile(t)
	p.Sample[3].Value[1] *= 4 // compute grows
	s, _ := Extract(p, Options{})
	g := newGraph(s, Config{Base: base})
	for i := range g.rects {
		r := &g.rects[i]
		name, _ := g.name(r)
		c := g.color(r)
		switch name {
		case "compute":
			if c>>16 != 0xff || c&0xff == 0xff {
				t.Errorf("compute grew but is #%06x", c)
			}
		case "render":
			if c&0xff != 0xff || c>>16 == 0xff {
				t.Errorf("render shrank but is #%06x", c)
			}
		}
	}
	out := render(t, s, Config{Format: SVG, Base: base})
	checkSVG(t, out)
}

func TestBatches(t *testing.T) {
	dir := t.TempDir()
	for i, app := range []string{"web", "web", "jobs"} {
		stem := filepath.Join(dir, fmt.Sprintf("%s-42-%d", app, i))
		f, _ := os.Create(stem + ".pb.gz")
		smallProfile(t).Write(f)
		f.Close()
		side := fmt.Sprintf(`{"application_name":%q,"labels":{"env":"prod"},"hostname":"h","pid":42,"start":"2026-01-01T10:0%d:00.000000001Z","end":"2026-01-01T10:0%d:59Z","samples":5}`, app, i, i)
		os.WriteFile(stem+".json", []byte(side), 0o644)
	}
	p, err := ReadBatches(dir, BatchFilter{Labels: map[string]string{"application_name": "web", "env": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Extract(p, Options{SampleType: "samples"})
	if s.Total != 200 {
		t.Errorf("two web batches: total %d, want 200", s.Total)
	}
	var f BatchFilter
	f.From, _ = parseRFC3339("2026-01-01T10:01:30Z")
	p, err = ReadBatches(dir, f)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := Extract(p, Options{SampleType: "samples"}); s.Total != 200 {
		t.Errorf("batches from 10:01:30: total %d, want 200", s.Total)
	}
	if _, err := ReadBatches(dir, BatchFilter{Labels: map[string]string{"pid": "7"}}); err == nil {
		t.Error("no batch of pid 7, but no error")
	}
}

// randomProfile has n distinct stacks of Python, native and kernel frames.
func randomProfile(tb testing.TB, n int) *profile.Profile {
	rng := rand.New(rand.NewSource(1))
	specs := make([]sampleSpec, 0, n)
	seen := make(map[string]bool)
	for len(specs) < n {
		depth := 3 + rng.Intn(25)
		stack := make([]string, depth)
		for d := range stack {
			switch k := rng.Intn(10); {
			case d < depth-3 || k < 6:
				stack[d] = fmt.Sprintf("py:func%d:mod%d.py:%d", rng.Intn(8)+d*3, rng.Intn(5), rng.Intn(4)+1)
			case k < 9:
				stack[d] = fmt.Sprintf("n:native%d", rng.Intn(50))
			default:
				stack[d] = fmt.Sprintf("k:kfunc%d", rng.Intn(30))
			}
		}
		key := strings.Join(stack, ";")
		if seen[key] {
			continue
		}
		seen[key] = true
		v := int64(1 + rng.Intn(100))
		specs = append(specs, sampleSpec{stack: stack, values: []int64{v, v * 1e7, v * 1e7}})
	}
	return buildProfile(tb, specs)
}

func BenchmarkSVG100kStacks(b *testing.B) {
	p := randomProfile(b, 100_000)
	var buf bytes.Buffer
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		s, err := Extract(p, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := WriteSVG(&buf, s, Config{MinWidth: MinWidth{Value: 1, Pixels: true}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "svg-bytes")
}

func parseRFC3339(s string) (t time.Time, err error) { return time.Parse(time.RFC3339, s) }

func TestExtractStates(t *testing.T) {
	fn := &profile.Function{ID: 1, Name: "f"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	sample := func(state string, wall int64) *profile.Sample {
		s := &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{wall}, Label: map[string][]string{}}
		if state != "" {
			s.Label["state"] = []string{state}
		}
		return s
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "wall", Unit: "nanoseconds"}},
		Sample:     []*profile.Sample{sample("", 1), sample("sleep", 10), sample("gil", 100), sample("runqueue", 1000)},
		Location:   []*profile.Location{loc},
		Function:   []*profile.Function{fn},
	}
	for _, tt := range []struct {
		opt  Options
		want int64
	}{
		{Options{}, 1111},
		{Options{States: []string{"gil"}}, 100},
		{Options{States: []string{"oncpu", "runqueue"}}, 1001},
		{Options{HideStates: []string{"gil"}}, 1011},
		{Options{States: []string{"gil", "sleep"}, HideStates: []string{"gil"}}, 10},
	} {
		s, err := Extract(p, tt.opt)
		if err != nil || s.Total != tt.want {
			t.Errorf("Extract(%+v): total %v, %v; want %d", tt.opt, s, err, tt.want)
		}
	}
}
