package container

import (
	"os"
	"strings"
	"testing"
)

const (
	id1 = "3f1b6c0a8d2e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"
	id2 = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	uid = "0c5a4f3e-9b2d-4e6f-8a1b-2c3d4e5f6a7b"
)

// Lines as the runtimes write them (ids shortened to two fixed values).
func TestFromCgroups(t *testing.T) {
	uidU := strings.ReplaceAll(uid, "-", "_")
	for _, tt := range []struct {
		name, file string
		want       Info
	}{
		{"host v2", "0::/user.slice/user-0.slice/session-3.scope\n", Info{}},
		{"host v1+v2", "12:pids:/system.slice/sshd.service\n1:name=systemd:/system.slice/sshd.service\n0::/system.slice/sshd.service\n", Info{}},
		{"root", "0::/\n", Info{}},
		{"docker v1 cgroupfs", "12:memory:/docker/" + id1 + "\n11:cpu,cpuacct:/docker/" + id1 + "\n1:name=systemd:/docker/" + id1 + "\n",
			Info{ID: id1, Runtime: "docker"}},
		{"docker v2 systemd", "0::/system.slice/docker-" + id1 + ".scope\n", Info{ID: id1, Runtime: "docker"}},
		{"containerd k8s systemd v2", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + id1 + ".scope\n",
			Info{ID: id1, Runtime: "containerd", PodUID: uid}},
		{"containerd k8s cgroupfs v1", "10:memory:/kubepods/burstable/pod" + uid + "/" + id1 + "\n1:name=systemd:/kubepods/burstable/pod" + uid + "/" + id1 + "\n",
			Info{ID: id1, PodUID: uid}},
		{"guaranteed pod cgroupfs v2", "0::/kubepods/pod" + uid + "/" + id2 + "\n", Info{ID: id2, PodUID: uid}},
		{"besteffort systemd", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/crio-" + id2 + ".scope\n",
			Info{ID: id2, Runtime: "cri-o", PodUID: uid}},
		{"crio conmon is not the container", "0::/kubepods.slice/kubepods-pod" + uidU + ".slice/crio-conmon-" + id2 + ".scope\n",
			Info{PodUID: uid}},
		{"podman rootful", "0::/machine.slice/libpod-" + id1 + ".scope/container\n", Info{ID: id1, Runtime: "podman"}},
		{"podman rootless", "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id2 + ".scope\n", Info{ID: id2, Runtime: "podman"}},
		{"nerdctl", "0::/system.slice/nerdctl-" + id1 + ".scope\n", Info{ID: id1, Runtime: "containerd"}},
		{"v2 wins over v1", "4:memory:/docker/" + id2 + "\n0::/system.slice/docker-" + id1 + ".scope\n", Info{ID: id1, Runtime: "docker"}},
		{"id shape outside a runtime's place", "0::/custom/" + id1 + "\n", Info{}},
		{"pod outside kubepods", "0::/system.slice/pod" + uid + "\n", Info{}},
		{"short id", "0::/docker/abc123\n", Info{}},
		{"our test cgroup", "0::/bprof-test/cri-containerd-" + id1 + ".scope\n", Info{ID: id1, Runtime: "containerd"}},
		{"empty", "", Info{}},
	} {
		cgs, err := ParseCgroups(strings.NewReader(tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := FromCgroups(cgs); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestParseCgroupsErrors(t *testing.T) {
	for _, in := range []string{
		"garbage\n", "0:/\n", "x::/\n", "0::relative\n", "-1::/\n", "9999999999::/\n",
		strings.Repeat("1:cpu:/\n", maxCgroupLines+1),
	} {
		if cgs, err := ParseCgroups(strings.NewReader(in)); err == nil {
			t.Errorf("ParseCgroups(%.40q) = %v, want an error", in, cgs)
		}
	}
	cgs, err := ParseCgroups(strings.NewReader("5:cpu,cpuacct:/a:b\n0::/x\n"))
	if err != nil || len(cgs) != 2 || cgs[0].Path != "/a:b" || len(cgs[0].Controllers) != 2 || cgs[1].Controllers != nil {
		t.Errorf("ParseCgroups: %+v, %v", cgs, err)
	}
}

func TestParseNamespace(t *testing.T) {
	for in, want := range map[string]string{
		"default": "default", "kube-system\n": "kube-system", "": "", "-x": "", "x-": "", "Prod": "",
		"a/b": "", strings.Repeat("a", 64): "", strings.Repeat("a", 63): strings.Repeat("a", 63),
	} {
		if got := ParseNamespace([]byte(in)); got != want {
			t.Errorf("ParseNamespace(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLabels(t *testing.T) {
	if m := (Info{}).Labels(); len(m) != 0 {
		t.Errorf("host process labels %v, want none", m)
	}
	m := Info{ID: id1, PodUID: uid, Namespace: "shop"}.Labels()
	if m["container_id"] != id1 || m["pod_uid"] != uid || m["namespace"] != "shop" || len(m) != 3 {
		t.Errorf("labels %v", m)
	}
}

// TestForPIDSelf reads this process's own cgroups: whatever they are, they
// parse, and the host test runner is in no container.
func TestForPIDSelf(t *testing.T) {
	info, err := ForPID(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("this process: %+v", info)
	if _, err := ForPID(1 << 30); err == nil {
		t.Error("ForPID of a pid that cannot exist: no error")
	}
}

func FuzzParseCgroups(f *testing.F) {
	for _, s := range []string{
		"0::/\n",
		"12:memory:/docker/" + id1 + "\n0::/system.slice/docker-" + id1 + ".scope\n",
		"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice/cri-containerd-" + id1 + ".scope\n",
		"10:memory:/kubepods/burstable/pod" + uid + "/" + id1 + "\n",
		"0::/machine.slice/libpod-" + id1 + ".scope/container\n",
		"1:name=systemd:/\n", "x", ":::", "0::/pod/kubepods-pod.slice\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cgs, err := ParseCgroups(strings.NewReader(string(b)))
		if err != nil {
			return
		}
		info := FromCgroups(cgs)
		if info.ID != "" && !isID(info.ID) {
			t.Errorf("container id %q is not 64 hex digits", info.ID)
		}
		if info.PodUID != "" && !isUUID(info.PodUID) {
			t.Errorf("pod uid %q is not a UUID", info.PodUID)
		}
		ParseNamespace(b)
	})
}
