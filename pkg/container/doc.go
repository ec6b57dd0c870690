// Package container tells which container, and which Kubernetes pod, a
// process runs in, from what the host can read about it: its cgroup paths
// (/proc/PID/cgroup, cgroup v1 and v2) and, for the namespace, the
// service-account files Kubernetes mounts into the pod.
//
// The patterns are those of the runtimes as they name cgroups:
//
//	Docker      /docker/<id>, /system.slice/docker-<id>.scope
//	containerd  /kubepods/.../<id>, .../cri-containerd-<id>.scope
//	CRI-O       .../crio-<id>.scope
//	podman      .../libpod-<id>.scope, /machine.slice/libpod-<id>.scope/container
//
// where <id> is 64 hex digits. A Kubernetes pod's cgroup has a pod<uid>
// component (kubepods-burstable-pod<uid with _>.slice under systemd,
// /kubepods/burstable/pod<uid> under cgroupfs).
//
// A cgroup path never carries the pod's namespace name. The one place the
// host can read it without asking the API server is the file Kubernetes
// mounts into every pod that keeps the default service-account token:
// /var/run/secrets/kubernetes.io/serviceaccount/namespace, read through
// /proc/PID/root. A pod without it gets no namespace label; none is guessed.
package container
