package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestAgentBadFlags: each bad flag is one line that says what to do, exit 2,
// before anything is loaded.
func TestAgentBadFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--label", "bad key=1"}, "label key \"bad key\": use letters, digits"},
		{[]string{"--label", "1st=1"}, "label key \"1st\""},
		{[]string{"--label", "pid=7"}, "reserved"},
		{[]string{"--label", "container_id=x"}, "reserved"},
		{[]string{"--label", "=v"}, "want key=value"},
		{[]string{"--period", "5ms"}, "--period 5ms: at least 10ms"},
		{[]string{"--period", "0"}, "--period"},
		{[]string{"--match-comm", "("}, "--match-comm \"(\": not a regular expression"},
		{[]string{"--match-cgroup", "[x"}, "--match-cgroup"},
		{[]string{"-p", "1", "--match-cmdline", "x"}, "system-wide mode"},
		{[]string{"--listen", "/tmp/x.sock", "--python-only=false"}, "system-wide mode"},
		{[]string{"--upload-url", "ftp://h"}, "upload URL"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"agent", "--output-dir", t.TempDir()}, tt.args...)
		code := mainWith(args, &stdout, &stderr)
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if code != 2 || !strings.Contains(stderr.String(), tt.want) || len(lines) != 1 {
			t.Errorf("bprof agent %q: exit %d, stderr %q; want 2 and one line with %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}

// TestAgentFlagWarnings: flags the agent can work with, but should not be
// run with in production, are warned about at start.
func TestAgentFlagWarnings(t *testing.T) {
	c, err := parseAgentFlags([]string{"--output-dir", "d", "--period", "500ms"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.warnings) != 1 || !strings.Contains(c.warnings[0], "under 1s") {
		t.Errorf("warnings %q, want one about the period under 1s", c.warnings)
	}
	c, err = parseAgentFlags([]string{"--output-dir", "d", "--match-comm", "^gunicorn", "--python-only=false"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.warnings) != 0 || c.opts.Filter.Comm == nil || !c.opts.Filter.AllProcesses || !c.opts.SystemWide {
		t.Errorf("config %+v, warnings %q", c.opts, c.warnings)
	}
}
