package python

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
)

// testInterpreter is a CPython found on this machine.
type testInterpreter struct {
	path    string
	version Version // minor from the file name
}

// minInterpreters is how many distinct CPython installations CI must have.
const minInterpreters = 6

// findInterpreters lists pyenv's builds of 3.7+ and /usr/bin/python3.X.
func findInterpreters(t testing.TB) []testInterpreter {
	t.Helper()
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		if out, err := exec.Command("pyenv", "root").Output(); err == nil {
			root = strings.TrimSpace(string(out))
		} else if home, err := os.UserHomeDir(); err == nil {
			root = filepath.Join(home, ".pyenv")
		}
	}
	var candidates []string
	dirs, _ := filepath.Glob(filepath.Join(root, "versions", "3.*"))
	for _, d := range dirs {
		bins, _ := filepath.Glob(filepath.Join(d, "bin", "python3.*"))
		candidates = append(candidates, bins...)
	}
	sys, _ := filepath.Glob("/usr/bin/python3.*")
	candidates = append(candidates, sys...)

	var found []testInterpreter
	seen := map[string]bool{}
	for _, p := range candidates {
		v, err := VersionFromFileName(p)
		if err != nil || v.Less(3, 7) {
			continue
		}
		// python3.7 and python3.7m are one installation.
		key := filepath.Dir(p) + "|" + v.String()
		if seen[key] {
			continue
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			continue
		}
		seen[key] = true
		found = append(found, testInterpreter{path: p, version: v})
	}
	sort.Slice(found, func(i, j int) bool { return found[i].path < found[j].path })
	return found
}

func TestInterpretersFound(t *testing.T) {
	found := findInterpreters(t)
	for _, in := range found {
		t.Logf("%s (%d.%d)", in.path, in.version.Major, in.version.Minor)
	}
	if len(found) < minInterpreters {
		testenv.Skip(t, fmt.Sprintf("found %d CPython 3.7+ interpreters, want at least %d", len(found), minInterpreters))
	}
}
