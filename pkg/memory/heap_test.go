package memory

import (
	"math"
	"os"
	"strings"
	"testing"

	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/symbolize"
	"golang.org/x/sys/unix"
)

func frames(names ...string) []symbolize.Frame {
	var fs []symbolize.Frame
	for _, n := range names {
		fs = append(fs, symbolize.Frame{Kind: symbolize.KindPython, Name: n, File: "x.py", Line: 1})
	}
	return fs
}

// TestHeap: blocks are kept per site until the sampler's set says they
// were freed; sites with nothing live go; a block at an address sampled
// again replaces the old one; Forget drops a process.
func TestHeap(t *testing.T) {
	h := NewHeap()
	l := export.Labels{PID: 1, TID: 1}
	h.Alloc(1, 0x1000, frames("hold", "<module>"), l, 1000, 10)
	h.Alloc(1, 0x2000, frames("hold", "<module>"), l, 500, 5)
	h.Alloc(1, 0x3000, frames("churn", "<module>"), l, 200, 2)
	h.Alloc(2, 0x1000, frames("hold", "<module>"), export.Labels{PID: 2, TID: 2}, 7, 1)
	// The sampler's set no longer has 0x3000 (freed); 0x9999 was never
	// sampled here; pid 2 is not touched.
	live := map[uint64]struct{}{0x1000: {}, 0x2000: {}, 0x9999: {}}
	upTo := h.Seq()
	h.Alloc(1, 0x4000, frames("late", "<module>"), l, 1, 1) // arrived after the copy
	if n := h.Retain(1, live, upTo); n != 1 || h.Len() != 4 {
		t.Errorf("Retain: forgot %d, %d left; want 1, 4", n, h.Len())
	}
	if n := h.Retain(1, live, h.Seq()); n != 1 || h.Len() != 3 {
		t.Errorf("Retain with the late block judged: forgot %d, %d left; want 1, 3", n, h.Len())
	}
	sum := func(skip func(int) bool) map[string]int64 {
		m := map[string]int64{}
		h.Each(skip, func(s *Site, bytes, objects int64) {
			m[s.Frames[0].Name+"/"+string(rune('0'+s.Labels.PID))] += bytes
		})
		return m
	}
	got := sum(nil)
	if got["hold/1"] != 1500 || got["hold/2"] != 7 || len(got) != 2 {
		t.Errorf("live by site %v, want hold/1 1500, hold/2 7", got)
	}
	if got := sum(func(pid int) bool { return pid == 2 }); len(got) != 1 {
		t.Errorf("skip pid 2: %v", got)
	}
	// Freed and sampled again before a Retain: the new block replaces it.
	h.Alloc(1, 0x1000, frames("churn", "<module>"), l, 300, 3)
	if got := sum(nil); got["hold/1"] != 500 || got["churn/1"] != 300 {
		t.Errorf("after a reused address: %v", got)
	}
	h.Forget(1)
	if h.Len() != 1 || len(h.sites) != 1 {
		t.Errorf("after Forget(1): %d blocks, %d sites; want 1, 1", h.Len(), len(h.sites))
	}
	// Frames are copied: the caller may reuse its slice.
	fs := frames("a")
	h.Alloc(3, 0x10, fs, export.Labels{PID: 3}, 1, 1)
	fs[0].Name = "b"
	h.Each(func(pid int) bool { return pid != 3 }, func(s *Site, _, _ int64) {
		if s.Frames[0].Name != "a" {
			t.Errorf("site frame changed with the caller's slice: %s", s.Frames[0].Name)
		}
	})
}

// TestWeight: the objects a sample stands for are its weight over its size.
func TestWeight(t *testing.T) {
	if w := Weight(1000, 524288); math.Abs(w-524.288) > 1e-9 {
		t.Errorf("Weight(1000, 524288) = %v", w)
	}
	if w := Weight(0, 5); w != 1 {
		t.Errorf("Weight(0, 5) = %v, want 1", w)
	}
}

// TestLibraryName: the library is named by its content, with the prefix
// Find looks for.
func TestLibraryName(t *testing.T) {
	n := LibraryName()
	if !strings.HasPrefix(n, libraryPrefix) || !strings.HasSuffix(n, ".so") || len(n) != len(libraryPrefix)+16+3 {
		t.Errorf("library name %q", n)
	}
	if len(Library()) < 1000 || string(Library()[:4]) != "\x7fELF" {
		t.Error("the embedded library is not an ELF file")
	}
}

// TestPlace: a file is written once, root's and 0644, and replaced (a new
// file renamed over it, never rewritten in place: a process may have the old
// one mapped) when the copy there differs.
func TestPlace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("writes a root-owned file into /tmp")
	}
	name := "bprof-test-" + nonce() + ".so"
	data := []byte("library")
	path, err := placeIn(os.Getpid(), "/tmp", name, data, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	if path != "/tmp/"+name {
		t.Errorf("placed at %s", path)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 || fi.Size() != int64(len(data)) {
		t.Fatalf("placed file: %v %v", fi, err)
	}
	var before, after syscallStat
	statIno(t, path, &before)
	if _, err := placeIn(os.Getpid(), "/tmp", name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	statIno(t, path, &after)
	if before != after {
		t.Error("an identical file was written again")
	}
	if _, err := placeIn(os.Getpid(), "/tmp", name, []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	statIno(t, path, &after)
	if b, _ := os.ReadFile(path); string(b) != "other" || before == after {
		t.Errorf("a different file: content %q, inode kept: %v", b, before == after)
	}
}

type syscallStat struct{ ino uint64 }

func statIno(t *testing.T, path string, st *syscallStat) {
	t.Helper()
	var s unix.Stat_t
	if err := unix.Stat(path, &s); err != nil {
		t.Fatal(err)
	}
	st.ino = s.Ino
}
