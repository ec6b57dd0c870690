package process

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLocalTIDSelf(t *testing.T) {
	pid, tid := os.Getpid(), unix.Gettid()
	got, err := LocalTID(pid, tid)
	if err != nil {
		t.Fatal(err)
	}
	if got != tid {
		t.Errorf("LocalTID(%d, %d) = %d: this test runs in the host's PID namespace, want the TID itself", pid, tid, got)
	}
	if _, err := LocalTID(pid, 1<<30); err == nil {
		t.Error("LocalTID of a thread that cannot exist: no error")
	}
}

// TestLocalTIDsSelf: in the host's namespace each TID maps to itself, and a
// thread that does not exist is left out of both answers.
func TestLocalTIDsSelf(t *testing.T) {
	pid, tid := os.Getpid(), unix.Gettid()
	local, host := LocalTIDs(pid, []int{tid, 1 << 30})
	if len(local) != 1 || local[0] != tid || len(host) != 1 || host[tid] != tid {
		t.Errorf("LocalTIDs(%d, [%d, 1<<30]) = %v, %v; want [%d], map[%d:%d]", pid, tid, local, host, tid, tid, tid)
	}
}
