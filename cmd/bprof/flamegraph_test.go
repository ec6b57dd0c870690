package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlamegraphFormats(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.folded")
	os.WriteFile(in, []byte("main;serve;handle 30\nmain;serve;query 20\nmain;gc 5\n"), 0o644)
	tests := []struct {
		out   string
		args  []string
		check func(t *testing.T, data []byte)
	}{
		{"a.svg", nil, func(t *testing.T, b []byte) {
			if err := xml.Unmarshal(b, new(struct{})); err != nil {
				t.Errorf("svg: %v", err)
			}
		}},
		{"a.html", nil, func(t *testing.T, b []byte) {
			if !bytes.HasPrefix(b, []byte("<!DOCTYPE html>")) {
				t.Error("not html")
			}
		}},
		{"a.txt", []string{"--focus", "serve"}, func(t *testing.T, b []byte) {
			if got := string(b); got != "main;serve;handle 30\nmain;serve;query 20\n" {
				t.Errorf("folded: %q", got)
			}
		}},
		{"a.json", nil, func(t *testing.T, b []byte) {
			var f struct{ Profiles []struct{ EndValue int64 } }
			if err := json.Unmarshal(b, &f); err != nil || len(f.Profiles) != 1 || f.Profiles[0].EndValue != 55 {
				t.Errorf("speedscope: %v %+v", err, f)
			}
		}},
		{"b.out", []string{"-f", "folded", "--ignore", "gc"}, func(t *testing.T, b []byte) {
			if strings.Contains(string(b), "gc") {
				t.Errorf("ignored frame present: %q", b)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.out, func(t *testing.T) {
			out := filepath.Join(dir, tt.out)
			var stdout, stderr bytes.Buffer
			args := append([]string{in, "-o", out}, tt.args...)
			if err := runFlamegraph(args, &stdout, &stderr); err != nil {
				t.Fatalf("runFlamegraph: %v (%s)", err, stderr.String())
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, data)
		})
	}
}

func TestFlamegraphErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	bad := write("x.txt", "hello there\n")
	empty := write("e.folded", "")
	good := write("g.folded", "a;b 1\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"neither", []string{bad}, "read " + bad + `: not a pprof profile nor folded stacks (first line: "hello there")`},
		{"empty", []string{empty}, "read " + empty + ": empty file"},
		{"sample type", []string{good, "--sample-type", "wall"}, "read " + good + `: no sample type "wall" (have samples)`},
		{"format", []string{good, "-f", "png"}, `unknown format "png"`},
		{"missing", []string{filepath.Join(dir, "nope.pb.gz")}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, "out-"+tt.name+".svg")
			args := append(tt.args, "-o", out)
			var stdout, stderr bytes.Buffer
			code := mainWith(append([]string{"flamegraph"}, args...), &stdout, &stderr)
			if code == 0 || !strings.Contains(stderr.String(), tt.want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want one line with %q", code, stderr.String(), tt.want)
			}
			if !strings.HasPrefix(stderr.String(), "bprof flamegraph: ") {
				t.Errorf("stderr %q lacks the command's name", stderr.String())
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), "out-") || strings.Contains(e.Name(), ".tmp") {
					t.Errorf("left %s behind", e.Name())
				}
			}
		})
	}
}
