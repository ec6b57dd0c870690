package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// A check is one thing bprof needs from the machine, and how to get it.
type check struct {
	name string
	run  func() (detail string, ok bool)
	fix  string
}

func checks() []check {
	return []check{
		{"kernel", checkKernel, "bprof needs Linux 5.15 or later"},
		{"BTF", func() (string, bool) {
			_, err := os.Stat("/sys/kernel/btf/vmlinux")
			return "/sys/kernel/btf/vmlinux", err == nil
		}, "use a kernel built with CONFIG_DEBUG_INFO_BTF=y"},
		{"privileges", func() (string, bool) {
			return fmt.Sprintf("euid %d", os.Geteuid()), os.Geteuid() == 0
		}, "run bprof as root (sudo), or grant CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE"},
		{"BPF perf-event programs", func() (string, bool) {
			err := features.HaveProgramType(ebpf.PerfEvent)
			return errText(err), err == nil
		}, "run as root; check kernel.unprivileged_bpf_disabled and that CONFIG_BPF_EVENTS=y"},
		{"ring buffers", func() (string, bool) {
			err := features.HaveMapType(ebpf.RingBuf)
			return errText(err), err == nil
		}, "bprof needs Linux 5.8 or later for BPF ring buffers"},
		{"perf events (cpu-clock)", checkPerfEvent, "run as root, or lower kernel.perf_event_paranoid (sysctl -w kernel.perf_event_paranoid=1)"},
		{"tracefs", func() (string, bool) {
			_, err := os.Stat("/sys/kernel/tracing/events/sched/sched_switch")
			return "/sys/kernel/tracing", err == nil
		}, "mount it: mount -t tracefs nodev /sys/kernel/tracing"},
		{"uprobes", func() (string, bool) {
			_, err := os.Stat("/sys/bus/event_source/devices/uprobe/type")
			return "/sys/bus/event_source/devices/uprobe", err == nil
		}, "use a kernel built with CONFIG_UPROBE_EVENTS=y"},
		{"kernel symbols", checkKallsyms, "run as root, or set kernel.kptr_restrict=0 (sysctl -w kernel.kptr_restrict=0)"},
	}
}

func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", "check", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	failed := 0
	for _, c := range checks() {
		detail, ok := c.run()
		if ok {
			fmt.Fprintf(stdout, "ok       %-24s %s\n", c.name, detail)
			continue
		}
		failed++
		fmt.Fprintf(stdout, "MISSING  %-24s %s; fix: %s\n", c.name, detail, c.fix)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed: see the fixes above", failed, len(checks()))
	}
	return nil
}

func checkKernel() (string, bool) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return err.Error(), false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	fmt.Sscanf(rel, "%d.%d", &major, &minor)
	return rel, major > 5 || (major == 5 && minor >= 15)
}

func checkPerfEvent() (string, bool) {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Size:   unix.PERF_ATTR_SIZE_VER5,
		Sample: 10_000_000,
		Bits:   unix.PerfBitDisabled,
	}
	fd, err := unix.PerfEventOpen(&attr, -1, 0, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return err.Error(), false
	}
	unix.Close(fd)
	return "software cpu-clock on CPU 0", true
}

func checkKallsyms() (string, bool) {
	b, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		return err.Error(), false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if strings.HasPrefix(line, "0000000000000000 ") {
		return "/proc/kallsyms shows zero addresses", false
	}
	return "/proc/kallsyms", true
}

func errText(err error) string {
	if err == nil {
		return "supported"
	}
	return err.Error()
}
