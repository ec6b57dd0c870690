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

// TestLocalTIDsSelf: in the host's namespace each TID maps to itself, from
// one read of the process's status. (The nested case is tested where a
// process runs in its own PID namespace: pkg/dump's TestTakeInPIDNamespace.)
func TestLocalTIDsSelf(t *testing.T) {
	// The test may run on the main thread, where tid is pid: the map then
	// holds one entry.
	pid, tid := os.Getpid(), unix.Gettid()
	local, host := LocalTIDs(pid, []int{tid, pid})
	distinct := map[int]bool{tid: true, pid: true}
	if len(local) != 2 || local[0] != tid || local[1] != pid || len(host) != len(distinct) || host[tid] != tid || host[pid] != pid {
		t.Errorf("LocalTIDs(%d, [%d %d]) = %v, %v; want the TIDs themselves", pid, tid, pid, local, host)
	}
}
