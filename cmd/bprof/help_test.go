package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestHelp: every command has --help, on standard output (so that it can be
// piped to a pager), with an example of its use.
func TestHelp(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := mainWith([]string{c.name, "--help"}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d", code)
			}
			help := stdout.String()
			if stderr.Len() > 0 {
				t.Errorf("--help wrote to standard error: %q", stderr.String())
			}
			example := regexp.MustCompile(`(?m)^  (sudo )?bprof ` + c.name + `\b`)
			if !strings.Contains(help, "Usage: bprof "+c.name) || !strings.Contains(help, "Example") || !example.MatchString(help) {
				t.Errorf("--help has no usage line or no example:\n%s", help)
			}
		})
	}
}
