package unwind

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
)

// realFile is an ELF file of this machine the tests read.
type realFile struct {
	name     string
	path     string
	required bool // always there on Debian: missing fails under CI
}

// pyenvRoot is where pyenv keeps its Pythons, "" when unknown.
func pyenvRoot() string {
	if out, err := exec.Command("pyenv", "root").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	if r := os.Getenv("PYENV_ROOT"); r != "" {
		return r
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".pyenv")
	}
	return ""
}

func realFiles() []realFile {
	py := filepath.Join(pyenvRoot(), "versions", "3.11.7")
	return []realFile{
		{"libc", "/lib/x86_64-linux-gnu/libc.so.6", true},
		{"libz", "/lib/x86_64-linux-gnu/libz.so.1", true},
		{"libcrypto", "/lib/x86_64-linux-gnu/libcrypto.so.3", false},
		{"libpython3.11-debian", "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", false},
		// pyenv builds with --enable-shared here: the binary is a stub and
		// the interpreter is in its libpython.
		{"python3.11-pyenv", filepath.Join(py, "bin", "python3.11"), false},
		{"libpython3.11-pyenv", filepath.Join(py, "lib", "libpython3.11.so.1.0"), false},
	}
}

// open opens f, skipping the test when it is not on this machine.
func (f realFile) open(t testing.TB) *elf.File {
	t.Helper()
	if _, err := os.Stat(f.path); err != nil {
		if f.required {
			testenv.Skip(t, f.path+" is missing")
		}
		t.Skip(f.path + " is not on this machine")
	}
	ef, err := elf.Open(f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ef.Close() })
	return ef
}

func parseFile(t testing.TB, f realFile) *Table {
	t.Helper()
	tab, err := Parse(f.open(t))
	if err != nil {
		t.Fatalf("Parse(%s): %v", f.path, err)
	}
	return tab
}

// LargestFunction reads only the FDEs' ranges, and finds what Parse finds.
func TestLargestFunctionMatchesParse(t *testing.T) {
	for _, f := range realFiles() {
		t.Run(f.name, func(t *testing.T) {
			want := parseFile(t, f).Largest
			got, err := LargestFunction(f.open(t))
			if err != nil {
				t.Fatalf("LargestFunction(%s): %v", f.path, err)
			}
			if got != want || got.End <= got.Start {
				t.Errorf("LargestFunction(%s) = %#x, Parse's Largest = %#x", f.path, got, want)
			}
		})
	}
}
