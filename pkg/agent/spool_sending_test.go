package agent

import (
	"strings"
	"testing"
)

// TestSpoolKeepsTheUploadBeingSent: overflow drops the oldest uploads but
// the one being sent, which may yet be delivered and must not be counted
// as dropped too.
func TestSpoolKeepsTheUploadBeingSent(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		big := strings.Repeat("x", 1000)
		s := newSpool(dir, 5000) // room for three uploads of about 1.45 KB (the body in base64)
		if _, err := s.load(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if _, err := s.push(&upload{PID: i, Body: []byte(big)}); err != nil {
				t.Fatal(err)
			}
		}
		seq, u, ok, err := s.head()
		if !ok || err != nil || u.PID != 0 {
			t.Fatalf("head: pid %v, %v, %v; want pid 0", u != nil && u.PID == 0, ok, err)
		}
		n, err := s.push(&upload{PID: 3, Body: []byte(big)})
		if err != nil || n != 1 {
			t.Fatalf("push over the bound dropped %d, %v; want 1", n, err)
		}
		if got, _, _, _ := s.head(); got != seq {
			t.Errorf("dir %q: the upload being sent (seq %d) was dropped; head is now %d", dir, seq, got)
		}
		var pids []int
		for _, e := range s.entries {
			if e.up != nil {
				pids = append(pids, e.up.PID)
			}
		}
		s.remove(seq) // delivered
		if n, _ := s.len(); n != 2 {
			t.Errorf("dir %q: %d uploads left, want 2 (pids 2 and 3)", dir, n)
		}
		if dir == "" && (len(pids) != 3 || pids[0] != 0 || pids[1] != 2 || pids[2] != 3) {
			t.Errorf("in memory: pids %v after overflow, want [0 2 3]", pids)
		}
	}
}
