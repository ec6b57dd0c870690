package process

import (
	"errors"
	"os"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
)

func ownExecutableMapping(t *testing.T) Mapping {
	t.Helper()
	ms, err := ReadMaps(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	for _, m := range ms {
		if m.Path == exe && m.Executable() {
			return m
		}
	}
	t.Fatalf("no executable mapping of %s", exe)
	return Mapping{}
}

func TestOpenMapped(t *testing.T) {
	good := ownExecutableMapping(t)
	f, err := OpenMapped(os.Getpid(), good)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	for _, tc := range []struct {
		name   string
		change func(*Mapping)
	}{
		{"inode", func(m *Mapping) { m.Inode++ }},
		{"device", func(m *Mapping) { m.Minor++ }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := good
			tc.change(&m)
			f, err := OpenMapped(os.Getpid(), m)
			if err == nil {
				f.Close()
				t.Fatal("OpenMapped accepted a device/inode mismatch")
			}
			if !errors.Is(err, ErrFileMismatch) {
				t.Errorf("err = %v, want ErrFileMismatch", err)
			}
		})
	}

	t.Run("anonymous", func(t *testing.T) {
		if _, err := OpenMapped(os.Getpid(), Mapping{Start: 0x1000, End: 0x2000, Path: "[heap]"}); err == nil {
			t.Error("OpenMapped of [heap]: no error")
		}
	})
	t.Run("fallback to root path", func(t *testing.T) {
		// A range that is not a mapping makes map_files fail, so the
		// path under /proc/PID/root is used and still checked.
		m := good
		m.Start, m.End = 0x1000, 0x2000
		f, err := OpenMapped(os.Getpid(), m)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		m.Inode++
		if _, err := OpenMapped(os.Getpid(), m); !errors.Is(err, ErrFileMismatch) {
			t.Errorf("err = %v, want ErrFileMismatch", err)
		}
	})
}

func TestCacheShares(t *testing.T) {
	testenv.RequireRoot(t)
	m := ownExecutableMapping(t)
	c := newCache(1)
	b1, err := c.Binary(os.Getpid(), m)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := c.Binary(os.Getpid(), m)
	if err != nil {
		t.Fatal(err)
	}
	if b1 != b2 || c.parses != 1 {
		t.Errorf("second lookup: same Binary %v, parses %d; want the same after one parse", b1 == b2, c.parses)
	}
	if b1.ID.String() == "" {
		t.Errorf("Binary of the test executable has no ID")
	}
	if name, _, ok := b1.Symbol(0); ok {
		t.Errorf("Symbol(0) = %q", name)
	}
	// A second file evicts the first from a cache of one.
	ms, _ := ReadMaps(os.Getpid())
	for _, o := range ms {
		if o.Executable() && !o.Anonymous() && o.Inode != m.Inode {
			if _, err := c.Binary(os.Getpid(), o); err == nil {
				if c.Len() != 1 {
					t.Errorf("Len = %d, want 1", c.Len())
				}
				if b3, _ := c.Binary(os.Getpid(), m); b3 == b1 || c.parses != 3 {
					t.Errorf("after eviction: parses %d, want a fresh parse", c.parses)
				}
			}
			break
		}
	}
}

func TestFileID(t *testing.T) {
	for _, tc := range []struct {
		id   FileID
		want string
	}{
		{newFileID("abcd", fileStat{Major: 8, Minor: 1, Inode: 5, Mtime: 9}), "buildid:abcd"},
		{newFileID("", fileStat{Major: 8, Minor: 1, Inode: 5, Mtime: 9}), "file:8:1:5:9"},
	} {
		if got := tc.id.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}
