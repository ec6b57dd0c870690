package container

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// serviceAccountNamespace is where Kubernetes mounts the pod's namespace
// name, with the default service-account token, in every container of a pod.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// maxNamespaceLen is the longest Kubernetes namespace name (a DNS label).
const maxNamespaceLen = 63

// ForPID reads where process pid runs: its cgroups from /proc/PID/cgroup
// and, in a Kubernetes pod, its namespace from the pod's service-account
// file (inside /proc/PID/root; needs Linux 5.6 for openat2). The paths are as the caller's cgroup
// namespace sees them: an agent in the host's sees a container's whole path.
func ForPID(pid int) (Info, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return Info{}, fmt.Errorf("read cgroups of %d: %w", pid, err)
	}
	cgs, err := ParseCgroups(f)
	f.Close()
	if err != nil {
		return Info{}, fmt.Errorf("read cgroups of %d: %w", pid, err)
	}
	info := FromCgroups(cgs)
	if info.Kubernetes() {
		info.Namespace = namespaceOf(pid)
	}
	return info, nil
}

// namespaceOf reads the pod's namespace name, or "" when the pod has no
// service-account mount (automountServiceAccountToken: false).
func namespaceOf(pid int) string {
	b, err := readInRoot(pid, serviceAccountNamespace, maxNamespaceLen+2)
	if err != nil {
		return ""
	}
	return ParseNamespace(b)
}

// readInRoot reads at most limit bytes of path as process pid sees it. The
// path is resolved inside the process's root (openat2 RESOLVE_IN_ROOT): in
// most images /var/run is a symlink to "/run", which through a plain
// /proc/PID/root/var/run would lead to the host's /run instead.
func readInRoot(pid int, path string, limit int64) ([]byte, error) {
	root, err := os.Open(fmt.Sprintf("/proc/%d/root", pid))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	fd, err := unix.Openat2(int(root.Fd()), strings.TrimPrefix(path, "/"), &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s in the root of %d: %w", path, pid, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// ParseNamespace checks the content of a service-account namespace file: a
// DNS label (lower-case letters, digits and '-', at most 63). Anything else
// is "": a label the cluster could not have made is not reported.
func ParseNamespace(b []byte) string {
	s := string(bytes.TrimSpace(b))
	if s == "" || len(s) > maxNamespaceLen || s[0] == '-' || s[len(s)-1] == '-' {
		return ""
	}
	if strings.IndexFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') }) >= 0 {
		return ""
	}
	return s
}
