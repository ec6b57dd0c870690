package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// summary turns test2json events back into plain `go test` output and
// remembers the skips.
type summary struct {
	w       io.Writer
	pending map[string][]string // output of running tests, by package and test
	skips   []skip
}

type skip struct {
	pkg, test, why string
}

func newSummary(w io.Writer) *summary {
	return &summary{w: w, pending: map[string][]string{}}
}

// line handles one line of go test's output. A line that is not an event
// (go test prints some of its own) is passed through.
func (s *summary) line(b []byte) {
	var e event
	if err := json.Unmarshal(b, &e); err != nil || e.Action == "" {
		fmt.Fprintf(s.w, "%s\n", b)
		return
	}
	key := e.Package + "\x00" + e.Test
	switch e.Action {
	case "output":
		s.pending[key] = append(s.pending[key], e.Output)
	case "build-output":
		io.WriteString(s.w, e.Output)
	case "fail":
		// A failing test or package: all it printed, as plain go test does.
		for _, o := range s.pending[key] {
			if !strings.HasPrefix(o, "=== ") && o != "PASS\n" {
				io.WriteString(s.w, o)
			}
		}
		delete(s.pending, key)
	case "skip", "pass":
		if e.Action == "skip" && e.Test != "" {
			s.skips = append(s.skips, skip{e.Package, e.Test, skipReason(s.pending[key])})
		}
		if e.Test == "" {
			// A package that passed: only its closing line ("ok  pkg 1.2s",
			// "?   pkg [no test files]").
			for _, o := range s.pending[key] {
				if strings.HasPrefix(o, "ok  ") || strings.HasPrefix(o, "?   ") {
					io.WriteString(s.w, o)
				}
			}
		}
		delete(s.pending, key)
	}
}

// skipReason is the message a skipped test logged last before its
// "--- SKIP" line (testing prints t.Skip's reason there).
func skipReason(out []string) string {
	for i := len(out) - 1; i >= 0; i-- {
		o := strings.TrimSpace(out[i])
		if o == "" || strings.HasPrefix(o, "--- SKIP") || strings.HasPrefix(o, "=== ") {
			continue
		}
		// "file_test.go:12: needs root": drop the position.
		if _, msg, ok := strings.Cut(o, ": "); ok && strings.Contains(o[:len(o)-len(msg)], ".go:") {
			return msg
		}
		return o
	}
	return "no reason given"
}

// report names the skipped tests and how to run them all.
func (s *summary) report() {
	if len(s.skips) == 0 {
		fmt.Fprintln(s.w, "\nNothing skipped. CI runs the same suite, with skips forbidden: sudo .ci/run")
		return
	}
	fmt.Fprintf(s.w, "\nSkipped %d test(s) this machine cannot run:\n", len(s.skips))
	for _, k := range s.skips {
		fmt.Fprintf(s.w, "  %s %s: %s\n", strings.TrimPrefix(k.pkg, "github.com/bprof/bprof/"), k.test, k.why)
	}
	fmt.Fprintln(s.w, "Run them all (installs what they need, then runs make test with skips forbidden): sudo .ci/run")
}
