package flamegraph

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; run go test -update and review the diff", name)
	}
}

func render(t *testing.T, s *Stacks, cfg Config) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, s, cfg); err != nil {
		t.Fatalf("write %s: %v", cfg.Format, err)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	p := smallProfile(t)
	tests := []struct {
		name  string
		opt   Options
		cfg   Config
		check func(t *testing.T, out []byte)
	}{
		{"small.folded", Options{}, Config{Format: Folded}, func(t *testing.T, out []byte) {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			want := []string{
				"<module> (app.py:1);serve (app.py:10);handle_request (app.py:20);render (views.py:5) 30000000",
				"<module> (app.py:1);serve (app.py:10);handle_request (app.py:21);query_db (db.py:7);send;sys_sendto_[k] 20000000",
				"worker (jobs.py:3);[lost] 10000000",
				"worker (jobs.py:3);compute (jobs.py:9);memcpy 40000000",
			}
			if strings.Join(lines, "\n") != strings.Join(want, "\n") {
				t.Errorf("folded:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
			}
		}},
		{"wall.folded", Options{SampleType: "wall", Thread: "MainThread"}, Config{Format: Folded}, func(t *testing.T, out []byte) {
			if !strings.Contains(string(out), "query_db (db.py:7);[off-cpu: sleep] 40000000") || strings.Contains(string(out), "worker") {
				t.Errorf("wall of MainThread:\n%s", out)
			}
		}},
		{"small.svg", Options{}, Config{Format: SVG, MinWidth: MinWidth{Value: 1, Pixels: true}}, checkSVG},
		{"icicle.svg", Options{Focus: regexp.MustCompile(`query_db`)}, Config{Format: SVG, Inverted: true, Title: "DB <icicle>"}, checkSVG},
		{"small.html", Options{}, Config{Format: HTML}, func(t *testing.T, out []byte) {
			for _, want := range []string{`id="search-input"`, `<table id="top">`, `id="bprof-data"`, "<td>query_db</td><td>db.py:7</td><td>Python</td>"} {
				if !bytes.Contains(out, []byte(want)) {
					t.Errorf("html lacks %s", want)
				}
			}
			if bytes.Contains(out, []byte("http://")) && !bytes.Contains(out, []byte(`xmlns="http://www.w3.org/2000/svg"`)) || bytes.Contains(out, []byte(" src=")) {
				t.Errorf("html refers to the network")
			}
		}},
		{"small.json", Options{}, Config{Format: Speedscope, PerThread: true}, checkSpeedscope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Extract(p, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			out := render(t, s, tt.cfg)
			tt.check(t, out)
			golden(t, tt.name, out)
		})
	}
}

// checkSVG parses the SVG as XML and checks its frames, tooltips and script.
func checkSVG(t *testing.T, out []byte) {
	t.Helper()
	var doc struct {
		XMLName xml.Name `xml:"svg"`
		Groups  []struct {
			ID     string `xml:"id,attr"`
			Frames []struct {
				Title string `xml:"title"`
				Rect  struct {
					Width float64 `xml:"width,attr"`
					Fill  string  `xml:"fill,attr"`
				} `xml:"rect"`
			} `xml:"g"`
		} `xml:"g"`
		Scripts []struct {
			ID   string `xml:"id,attr"`
			Body string `xml:",chardata"`
		} `xml:"script"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("parse svg: %v", err)
	}
	var frames int
	var titles []string
	for _, g := range doc.Groups {
		if g.ID != "frames" {
			continue
		}
		frames = len(g.Frames)
		for _, f := range g.Frames {
			titles = append(titles, f.Title)
			if f.Rect.Width <= 0 || !strings.HasPrefix(f.Rect.Fill, "#") {
				t.Errorf("frame %q: width %v fill %q", f.Title, f.Rect.Width, f.Rect.Fill)
			}
		}
	}
	if frames == 0 {
		t.Fatal("svg has no frames")
	}
	if !strings.HasPrefix(titles[0], "all\n") {
		t.Errorf("first frame %q, want all", titles[0])
	}
	var data scriptData
	for _, s := range doc.Scripts {
		if s.ID == "bprof-data" {
			if err := json.Unmarshal([]byte(s.Body), &data); err != nil {
				t.Fatalf("parse script data: %v", err)
			}
		}
	}
	if len(data.Rects) != frames {
		t.Errorf("script data has %d rects for %d frames", len(data.Rects), frames)
	}
	joined := strings.Join(titles, "\n---\n")
	for _, want := range []string{"query_db\ndb.py:7\nPython frame\n20.00 ms", "sys_sendto\nkernel frame"} {
		if strings.Contains(string(out), "query_db") && !strings.Contains(joined, want) {
			t.Errorf("no tooltip %q in\n%s", want, joined)
		}
	}
}

func checkSpeedscope(t *testing.T, out []byte) {
	t.Helper()
	var f ssFile
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("parse speedscope: %v", err)
	}
	if f.Schema != SpeedscopeSchema || len(f.Profiles) != 2 {
		t.Fatalf("schema %q, %d profiles; want 2 (per thread)", f.Schema, len(f.Profiles))
	}
	for _, p := range f.Profiles {
		var sum int64
		for i, s := range p.Samples {
			sum += p.Weights[i]
			for _, fi := range s {
				if int(fi) >= len(f.Shared.Frames) {
					t.Fatalf("frame %d out of range", fi)
				}
			}
		}
		if p.Type != "sampled" || p.Unit != "nanoseconds" || p.EndValue != sum {
			t.Errorf("profile %s: type %s unit %s end %d sum %d", p.Name, p.Type, p.Unit, p.EndValue, sum)
		}
	}
	if f.Profiles[0].Name != "MainThread (100)" {
		t.Errorf("first profile %q", f.Profiles[0].Name)
	}
	root := f.Shared.Frames[f.Profiles[0].Samples[0][0]]
	if root.Name != "<module>" || root.File != "app.py" || root.Line != 1 {
		t.Errorf("root frame %+v, want <module> app.py:1", root)
	}
}
