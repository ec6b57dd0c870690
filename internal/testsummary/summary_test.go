package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestB","Output":"=== RUN   TestB\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:4: needs root for BPF\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"--- SKIP: TestB (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestC","Output":"=== RUN   TestC\n"}
{"Action":"output","Package":"p","Test":"TestC","Output":"    c_test.go:9: got 1, want 2\n"}
{"Action":"output","Package":"p","Test":"TestC","Output":"--- FAIL: TestC (0.00s)\n"}
{"Action":"fail","Package":"p","Test":"TestC"}
{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.004s\n"}
{"Action":"fail","Package":"p"}
{"Action":"output","Package":"q","Output":"testing: warning: no tests to run\n"}
{"Action":"output","Package":"q","Output":"ok  \tq\t0.1s [no tests to run]\n"}
{"Action":"pass","Package":"q"}
go: something of its own
`

func TestSummary(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out)
	for _, l := range strings.Split(strings.TrimSuffix(sample, "\n"), "\n") {
		s.line([]byte(l))
	}
	s.report()
	want := `    c_test.go:9: got 1, want 2
--- FAIL: TestC (0.00s)
FAIL	p	0.004s
ok  	q	0.1s [no tests to run]
go: something of its own

Skipped 1 test(s) this machine cannot run:
  p TestB: needs root for BPF
Run them all (installs what they need, then runs make test with skips forbidden): sudo .ci/run
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestSummaryNothingSkipped(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out)
	s.line([]byte(`{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}`))
	s.line([]byte(`{"Action":"pass","Package":"p"}`))
	s.report()
	if !strings.HasPrefix(out.String(), "ok  \tp\t0.1s\n") || !strings.Contains(out.String(), "Nothing skipped") {
		t.Errorf("got %q", out.String())
	}
}

// FuzzSummary: any line, JSON or not, is handled without a panic.
func FuzzSummary(f *testing.F) {
	for _, l := range strings.Split(sample, "\n") {
		f.Add([]byte(l))
	}
	f.Add([]byte(`{"Action":"skip","Test":"T"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		s := newSummary(&out)
		s.line(b)
		s.report()
	})
}
