package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// A check is one thing bprof needs from the machine, and how to get it.
// A check with a feature is needed only by that feature: its failure is a
// warning that names it, and bprof check still passes.
type check struct {
	name    string
	run     func() (detail string, ok bool)
	fix     string
	feature string
}

func checks() []check {
	return []check{
		{"kernel", checkKernel, "bprof needs Linux 5.15 or later", ""},
		{"BTF", func() (string, bool) {
			_, err := os.Stat("/sys/kernel/btf/vmlinux")
			return "/sys/kernel/btf/vmlinux", err == nil
		}, "use a kernel built with CONFIG_DEBUG_INFO_BTF=y", ""},
		{"privileges", func() (string, bool) {
			return fmt.Sprintf("euid %d", os.Geteuid()), os.Geteuid() == 0
		}, "run bprof as root (sudo), or grant CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE", ""},
		{"BPF perf-event programs", func() (string, bool) {
			err := features.HaveProgramType(ebpf.PerfEvent)
			return errText(err), err == nil
		}, "run as root; check kernel.unprivileged_bpf_disabled and that CONFIG_BPF_EVENTS=y", ""},
		{"ring buffers", func() (string, bool) {
			err := features.HaveMapType(ebpf.RingBuf)
			return errText(err), err == nil
		}, "bprof needs Linux 5.8 or later for BPF ring buffers", ""},
		{"perf events (cpu-clock)", checkPerfEvent, "run as root, or lower kernel.perf_event_paranoid (sysctl -w kernel.perf_event_paranoid=1)", ""},
		{"sched_switch (tp_btf)", checkSchedSwitch, "use a kernel built with CONFIG_DEBUG_INFO_BTF=y and CONFIG_BPF_JIT=y, or record with --no-offcpu",
			"wall time (off-CPU, sched_switch); --no-offcpu records CPU only"},
		{"kernel symbols", checkKallsyms, "run as root, or set kernel.kptr_restrict=0 (sysctl -w kernel.kptr_restrict=0)",
			"kernel frame names (without them kernel frames are [kernel]+0x...)"},
		// bprof attaches by BTF and perf events: it needs neither tracefs
		// nor uprobes. The peers `make bench` compares it with do.
		{"tracefs", func() (string, bool) {
			_, err := os.Stat("/sys/kernel/tracing/events/sched/sched_switch")
			return "/sys/kernel/tracing", err == nil
		}, "mount it: mount -t tracefs nodev /sys/kernel/tracing",
			"only make bench's peers (perf, bpftrace); bprof itself does not use it"},
		{"uprobes", func() (string, bool) {
			_, err := os.Stat("/sys/bus/event_source/devices/uprobe/type")
			return "/sys/bus/event_source/devices/uprobe", err == nil
		}, "use a kernel built with CONFIG_UPROBE_EVENTS=y",
			"only make bench's peers (bpftrace); bprof itself does not use them"},
	}
}

const checkSynopsis = `check

Reports whether this machine can run bprof: MISSING lines are what bprof
needs (the exit status is then 1), WARN lines what only one feature needs,
named on the line. Each says how to fix it.

Example:
  sudo bprof check`

func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", checkSynopsis, stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return report(checks(), stdout)
}

// report runs cs and prints a line for each: ok, MISSING (bprof cannot run:
// an error) or WARN (a feature cannot).
func report(cs []check, w io.Writer) error {
	failed, warned := 0, 0
	for _, c := range cs {
		detail, ok := c.run()
		switch {
		case ok:
			fmt.Fprintf(w, "ok       %-24s %s\n", c.name, detail)
		case c.feature != "":
			warned++
			fmt.Fprintf(w, "WARN     %-24s %s; needed for: %s; fix: %s\n", c.name, detail, c.feature, c.fix)
		default:
			failed++
			fmt.Fprintf(w, "MISSING  %-24s %s; fix: %s\n", c.name, detail, c.fix)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed: bprof cannot run here; see the fixes above", failed, len(cs))
	}
	if warned > 0 {
		fmt.Fprintf(w, "bprof can run here; %d feature(s) cannot (WARN above)\n", warned)
	} else {
		fmt.Fprintln(w, "bprof can run here")
	}
	return nil
}

// checkSchedSwitch loads (and drops) a do-nothing program of the kind
// bprof's off-CPU program is: a BTF tracepoint on sched_switch.
func checkSchedSwitch() (string, bool) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceRawTp,
		AttachTo:     "sched_switch",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		return err.Error(), false
	}
	prog.Close()
	return "supported", true
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
