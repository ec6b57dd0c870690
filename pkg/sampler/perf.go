package sampler

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// AttachCPUClock attaches prog, a perf_event program, to cpu-clock events on
// every online CPU at rate Hz, as New attaches bprof's own: a benchmark runs
// a reference program (an empty one, the floor) on the same ticks with it.
// Close detaches it.
func AttachCPUClock(prog *ebpf.Program, rate int) (io.Closer, error) {
	return openCPUClock(prog, rate)
}

// perfEvents are one perf event per online CPU, each linked to a program.
type perfEvents struct {
	fds   []int
	links []link.Link
}

// openCPUClock opens a software cpu-clock event on every online CPU that fires
// every 1/rate seconds of CPU time, and attaches prog to each with a BPF link
// (so closing the link detaches it, and nothing outlives the process).
func openCPUClock(prog *ebpf.Program, rate int) (*perfEvents, error) {
	cpus, err := onlineCPUs()
	if err != nil {
		return nil, err
	}
	pe := &perfEvents{}
	for _, cpu := range cpus {
		attr := unix.PerfEventAttr{
			Type:   unix.PERF_TYPE_SOFTWARE,
			Config: unix.PERF_COUNT_SW_CPU_CLOCK,
			Size:   uint32(unsafeSizeofPerfEventAttr),
			// cpu-clock counts nanoseconds: a fixed period samples every
			// thread at exactly the rate of its CPU time.
			Sample: uint64(1_000_000_000 / rate),
		}
		fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err != nil {
			pe.Close()
			return nil, privilegeError(fmt.Errorf("open cpu-clock perf event on CPU %d: %w", cpu, err))
		}
		pe.fds = append(pe.fds, fd)
		l, err := link.AttachRawLink(link.RawLinkOptions{Target: fd, Program: prog, Attach: ebpf.AttachPerfEvent})
		if err != nil {
			pe.Close()
			return nil, fmt.Errorf("attach %s to the perf event on CPU %d: %w", prog, cpu, err)
		}
		pe.links = append(pe.links, l)
	}
	return pe, nil
}

func (pe *perfEvents) Close() error {
	var errs []error
	for _, l := range pe.links {
		errs = append(errs, l.Close())
	}
	for _, fd := range pe.fds {
		errs = append(errs, unix.Close(fd))
	}
	pe.links, pe.fds = nil, nil
	return errors.Join(errs...)
}

const unsafeSizeofPerfEventAttr = unix.PERF_ATTR_SIZE_VER5

func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, fmt.Errorf("list online CPUs: %w", err)
	}
	return ParseCPUList(string(b))
}

// ParseCPUList parses the kernel's CPU list format ("0-3,5,7-8").
func ParseCPUList(s string) ([]int, error) {
	var cpus []int
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("parse CPU list: empty")
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("parse CPU list %q: bad CPU %q", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("parse CPU list %q: bad range %q", s, part)
			}
		}
		if b-a > 1<<16 || len(cpus) > 1<<16 {
			return nil, fmt.Errorf("parse CPU list %q: too many CPUs", s)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}
