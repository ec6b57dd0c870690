package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// machine describes what the figures were measured on: the two vCPUs of
// this VM differ, so each is named.
func machine(cfg config) string {
	var b strings.Builder
	var u unix.Utsname
	unix.Uname(&u)
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "- %s, Linux %s, %d CPUs, %s\n", host, unix.ByteSliceToString(u.Release[:]), runtime.NumCPU(), runtime.Version())
	for i, cpu := range cpuModels() {
		role := ""
		switch i {
		case targetCPU:
			role = " (timed targets pinned here)"
		case toolCPU:
			role = " (tools pinned here)"
		}
		fmt.Fprintf(&b, "- CPU %d: %s%s\n", i, cpu, role)
	}
	fmt.Fprintf(&b, "- host workloads: %s (%s)\n", cfg.python, firstLine(cfg.python, "--version"))
	for _, v := range []struct{ what, out string }{
		{"chroot workloads", firstLine("chroot", chrootRoot(), "python3", "--version")},
		{"perf", firstLine("perf", "--version")},
		{"bpftrace", firstLine("bpftrace", "--version")},
		{"offcputime", "libbpf-tools " + firstLine("dpkg-query", "-W", "-f", "${Version}", "libbpf-tools")},
		{"profile-libbpf", "libbpf-tools " + firstLine("chroot", chrootRoot(), "dpkg-query", "-W", "-f", "${Version}", "libbpf-tools")},
		{"austin", firstLine("chroot", chrootRoot(), "austin", "--version")},
	} {
		fmt.Fprintf(&b, "- %s: %s\n", v.what, v.out)
	}
	return b.String()
}

// cpuModels names each CPU with its model and its clock as the kernel last read it.
func cpuModels() []string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	var model string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			model = strings.TrimSpace(v)
		case "cpu MHz":
			out = append(out, fmt.Sprintf("%s, %s MHz", model, strings.TrimSpace(v)))
		}
	}
	return out
}

// firstLine is the first line a command prints, or why it printed none.
func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil && line == "" {
		return "not available (" + err.Error() + ")"
	}
	return line
}
