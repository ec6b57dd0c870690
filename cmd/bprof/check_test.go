package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
)

// TestCheckMachine: this machine runs bprof (the other tests prove it), so
// bprof check passes and says so.
func TestCheckMachine(t *testing.T) {
	testenv.RequireRoot(t)
	var stdout, stderr bytes.Buffer
	if code := mainWith([]string{"check"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "bprof can run here") {
		t.Errorf("no verdict:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), "MISSING") {
		t.Errorf("MISSING on a machine that runs bprof:\n%s", stdout.String())
	}
}

// TestCheckReport: only what bprof needs fails the check; what one feature
// needs is a warning naming the feature.
func TestCheckReport(t *testing.T) {
	pass := func() (string, bool) { return "fine", true }
	fail := func() (string, bool) { return "absent", false }
	for _, tc := range []struct {
		name    string
		cs      []check
		wantErr bool
		want    []string
	}{
		{"all ok", []check{{"a", pass, "", ""}}, false, []string{"ok       a", "bprof can run here"}},
		{"tracefs missing", []check{{"a", pass, "", ""}, {"tracefs", fail, "mount it", "make bench's peers"}}, false,
			[]string{"WARN     tracefs", "needed for: make bench's peers; fix: mount it", "1 feature(s) cannot"}},
		{"needed missing", []check{{"BTF", fail, "rebuild", ""}, {"tracefs", fail, "mount it", "x"}}, true,
			[]string{"MISSING  BTF                      absent; fix: rebuild", "WARN     tracefs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := report(tc.cs, &out)
			if (err != nil) != tc.wantErr {
				t.Errorf("error %v, want one: %v", err, tc.wantErr)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
