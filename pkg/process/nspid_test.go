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
