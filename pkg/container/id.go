package container

import "strings"

// Info is what a process's cgroups say about where it runs. Zero fields are
// unknown: a process on the host has a zero Info.
type Info struct {
	ID        string // the container's ID, 64 hex digits
	Runtime   string // "docker", "containerd", "cri-o" or "podman"; "" when only the ID's shape tells
	PodUID    string // the Kubernetes pod's UID, dashed (8-4-4-4-12)
	Namespace string // the Kubernetes namespace, only from the pod's own service-account file
}

// Kubernetes reports whether the cgroup says the process runs in a pod.
func (i Info) Kubernetes() bool { return i.PodUID != "" }

// Labels returns i as profile labels: container_id, pod_uid, namespace,
// each only when known.
func (i Info) Labels() map[string]string {
	m := map[string]string{}
	if i.ID != "" {
		m["container_id"] = i.ID
	}
	if i.PodUID != "" {
		m["pod_uid"] = i.PodUID
	}
	if i.Namespace != "" {
		m["namespace"] = i.Namespace
	}
	return m
}

// scopePrefixes are the systemd scope names the runtimes give a container's
// cgroup: PREFIX<id>.scope.
var scopePrefixes = []struct{ prefix, runtime string }{
	{"docker-", "docker"},
	{"cri-containerd-", "containerd"},
	{"crio-", "cri-o"},
	{"libpod-", "podman"},
	{"nerdctl-", "containerd"},
}

// FromCgroups finds the container and pod in a process's cgroup paths. The
// v2 path ("0::") is looked at first, then the v1 ones; the innermost
// component that names a container wins (podman puts the payload in a
// "container" child of its scope, so a container's own cgroup may not be the
// last component).
func FromCgroups(cgs []Cgroup) Info {
	var info Info
	ordered := make([]Cgroup, 0, len(cgs))
	for _, c := range cgs {
		if c.ID == 0 && len(c.Controllers) == 0 {
			ordered = append([]Cgroup{c}, ordered...)
		} else {
			ordered = append(ordered, c)
		}
	}
	for _, c := range ordered {
		i := fromPath(c.Path)
		if info.ID == "" {
			info.ID, info.Runtime = i.ID, i.Runtime
		}
		if info.PodUID == "" {
			info.PodUID = i.PodUID
		}
		if info.ID != "" && info.PodUID != "" {
			break
		}
	}
	return info
}

// fromPath reads one cgroup path.
func fromPath(path string) Info {
	var info Info
	parts := strings.Split(path, "/")
	kube := false
	for i, p := range parts {
		kube = kube || strings.HasPrefix(p, "kubepods")
		if uid := podUID(p); uid != "" && kube {
			info.PodUID = uid
		}
		// A bare ID is a container only where runtimes put one: under
		// /docker/ (Docker's cgroupfs driver) or a pod (the kubelet's
		// cgroupfs driver, any runtime).
		parent := ""
		if i > 0 {
			parent = parts[i-1]
		}
		if id, rt := containerID(p, parent == "docker", info.PodUID != ""); id != "" {
			info.ID, info.Runtime = id, rt
		}
	}
	return info
}

// containerID returns the ID in one path component: a known runtime's
// scope (PREFIX<id>.scope), or 64 bare hex digits where underDocker or
// inPod allows one.
func containerID(p string, underDocker, inPod bool) (id, runtime string) {
	if name, ok := strings.CutSuffix(p, ".scope"); ok {
		for _, s := range scopePrefixes {
			if rest, ok := strings.CutPrefix(name, s.prefix); ok && isID(rest) {
				return rest, s.runtime
			}
		}
		return "", ""
	}
	switch {
	case !isID(p):
		return "", ""
	case underDocker:
		return p, "docker"
	case inPod:
		return p, "" // containerd, CRI-O or Docker: the path does not say
	}
	return "", ""
}

// podUID returns the UID of a pod component: "pod<uid>" (cgroupfs driver,
// dashed) or "kubepods-<qos>-pod<uid>.slice" (systemd driver, dashes as _).
func podUID(p string) string {
	p = strings.TrimSuffix(p, ".slice")
	i := strings.LastIndex(p, "pod")
	if i < 0 || (i > 0 && p[i-1] != '-') {
		return ""
	}
	uid := strings.ReplaceAll(p[i+3:], "_", "-")
	if !isUUID(uid) {
		return ""
	}
	return uid
}

func isID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// isUUID reports an 8-4-4-4-12 hex UUID.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
