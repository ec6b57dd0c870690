package flamegraph

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
)

// TestBrowser opens the SVG and HTML in headless Chromium (tests/browser).
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Skip(t, "needs node on PATH (run .ci/setup-browser.sh)")
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		testenv.Skip(t, "needs /usr/bin/chromium (run .ci/setup-browser.sh)")
	}
	browserDir, _ := filepath.Abs("../../tests/browser")
	if _, err := os.Stat(filepath.Join(browserDir, "node_modules", "playwright-core")); err != nil {
		testenv.Skip(t, "needs tests/browser/node_modules (run .ci/setup-browser.sh)")
	}
	dir := t.TempDir()
	s, _ := Extract(smallProfile(t), Options{})
	for name, cfg := range map[string]Config{"small.svg": {Format: SVG}, "small.html": {Format: HTML}, "small.json": {Format: Speedscope}} {
		os.WriteFile(filepath.Join(dir, name), render(t, s, cfg), 0o644)
	}
	// serve and query_db match at two depths of the same samples: 50%, not 70%.
	os.WriteFile(filepath.Join(dir, "expect.json"), []byte(`{"search":"serve|query_db","matched":"50.0","zoom":"handle_request\napp.py:21"}`), 0o644)
	cmd := exec.Command(node, "flamegraph.test.js", dir)
	cmd.Dir = browserDir
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("browser test: %v", err)
	}
}
