package container

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bprof/bprof/internal/testenv"
)

// TestForPIDPod runs a process as the kubelet would place a container's:
// in a cgroup v2 group /kubepods/burstable/pod<uid>/<id> (the cgroupfs
// driver), with the service-account namespace file mounted where Kubernetes
// mounts it, in the process's own mount namespace. ForPID reads all three.
func TestForPIDPod(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "unshare")
	const unified = "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(unified, "cgroup.procs")); err != nil {
		testenv.Skip(t, "no cgroup v2 hierarchy at "+unified)
	}
	b := make([]byte, 32)
	rand.Read(b)
	id := hex.EncodeToString(b)
	top := filepath.Join(unified, fmt.Sprintf("bprof-test-pod-%d", os.Getpid()))
	dir := filepath.Join(top, "kubepods", "burstable", "pod"+uid, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for d := dir; d != unified; d = filepath.Dir(d) {
			for deadline := time.Now().Add(5 * time.Second); os.Remove(d) != nil && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond) // busy until the process is reaped
			}
		}
	})
	// A tmpfs on /run in a private mount namespace: the host's /run is
	// untouched, and /proc/PID/root shows the process's own view.
	sa := "/run/secrets/kubernetes.io/serviceaccount"
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`echo $$ > "$1/cgroup.procs" && mount -t tmpfs bprof-test /run && mkdir -p "$2" && printf shop > "$2/namespace" && echo ready && exec sleep 1000`,
		"sh", dir, sa)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "ready" {
		t.Fatalf("pod process: %q", line)
	}
	info, err := ForPID(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	want := Info{ID: id, PodUID: uid, Namespace: "shop"}
	if info != want {
		t.Errorf("ForPID = %+v, want %+v", info, want)
	}
	if _, err := os.Stat("/var/run/secrets"); err == nil {
		t.Error("the host's /var/run/secrets exists: the test's mount leaked")
	}
}
