package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The peers' workloads run in the Debian trixie root that
// .ci/setup-chroots.sh builds and bench/peers.sh completes with austin and
// trixie's libbpf-tools. Targets run there, under its python3.13, and not on
// the host: austin (built for trixie, so run inside it) finds the
// interpreter by opening the paths of /proc/PID/maps, which must mean the
// same files to austin as to the target. bprof, perf and bpftrace run on the
// host and profile the chrooted target as they would a container's, so
// every tool sees the same process running the same interpreter.

// chrootInside is where workload scripts are copied to in the root.
const chrootInside = "/tmp/bprof-bench"

type chroot struct {
	root    string
	mounted []string // what Close unmounts, last first
}

// openChroot checks the trixie root has the peers and mounts /proc (austin
// lists and reads processes through it) and /sys (libbpf-tools reads the
// kernel's BTF and the online CPUs) unless they are mounted already.
func openChroot() (*chroot, error) {
	c := &chroot{root: chrootRoot()}
	for _, bin := range []string{"usr/bin/python3", "usr/bin/austin", "usr/sbin/profile-libbpf"} {
		if _, err := os.Stat(filepath.Join(c.root, bin)); err != nil {
			return nil, fmt.Errorf("trixie root lacks /%s: run bench/peers.sh", bin)
		}
	}
	for _, m := range []struct{ dir, fstype, source string }{{"proc", "proc", "proc"}, {"sys", "", "/sys"}} {
		target := filepath.Join(c.root, m.dir)
		if isMountPoint(target) {
			continue
		}
		flags := uintptr(0)
		if m.fstype == "" {
			flags = unix.MS_BIND
		}
		if err := unix.Mount(m.source, target, m.fstype, flags, ""); err != nil {
			c.Close()
			return nil, fmt.Errorf("mount %s in %s: %w", m.dir, c.root, err)
		}
		c.mounted = append(c.mounted, target)
	}
	if err := os.MkdirAll(filepath.Join(c.root, chrootInside), 0o755); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// chrootRoot is where .ci/setup-chroots.sh puts the trixie root.
func chrootRoot() string {
	dir := os.Getenv("BPROF_CHROOTS")
	if dir == "" {
		dir = "/var/cache/bprof/chroots"
	}
	return filepath.Join(dir, "trixie")
}

// Close unmounts what openChroot mounted.
func (c *chroot) Close() error {
	var first error
	for i := len(c.mounted) - 1; i >= 0; i-- {
		if err := unix.Unmount(c.mounted[i], 0); err != nil && first == nil {
			first = fmt.Errorf("unmount %s: %w", c.mounted[i], err)
		}
	}
	c.mounted = nil
	return first
}

// cmd is argv run inside the root.
func (c *chroot) cmd(argv ...string) []string {
	return append([]string{"chroot", c.root}, argv...)
}

// python is argv for a testdata/python or testdata/bench script run by the
// root's python3; the script is copied in first.
func (c *chroot) python(script string, args ...string) ([]string, error) {
	src := filepath.Join("testdata", "python", script)
	if _, err := os.Stat(src); err != nil {
		src = filepath.Join("testdata", "bench", script)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("read workload: %w", err)
	}
	inside := filepath.Join(chrootInside, script)
	if err := os.WriteFile(filepath.Join(c.root, inside), b, 0o644); err != nil {
		return nil, fmt.Errorf("copy workload into %s: %w", c.root, err)
	}
	return c.cmd(append([]string{"/usr/bin/python3", inside}, args...)...), nil
}

// host is the path on the host of a path inside the root.
func (c *chroot) host(inside string) string { return filepath.Join(c.root, inside) }

// isMountPoint tells whether dir is the mount point of a mount of this
// process's namespace.
func isMountPoint(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && fields[4] == dir {
			return true
		}
	}
	return false
}
