package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bprof/bprof/pkg/sampler"
)

// floorProbe is the floor under any perf_event sampler here: an empty BPF
// program (return 0) on a cpu-clock event of every online CPU at the same
// rate as bprof's, run beside it so both see the same ticks. What a tick
// costs it (the timer's overflow handling, entering and leaving the
// program, bpf_stats' own clock reads) no sampler's program can go below;
// bprof's cost above it is what bprof's code adds.
type floorProbe struct {
	prog  *ebpf.Program
	fds   []int
	links []link.Link
}

func startFloor(rate int) (*floorProbe, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "bench_floor",
		Type:         ebpf.PerfEvent,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		return nil, fmt.Errorf("load the empty program: %w", err)
	}
	f := &floorProbe{prog: prog}
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		f.Close()
		return nil, err
	}
	cpus, err := sampler.ParseCPUList(string(b))
	if err != nil {
		f.Close()
		return nil, err
	}
	for _, cpu := range cpus {
		attr := unix.PerfEventAttr{
			Type:   unix.PERF_TYPE_SOFTWARE,
			Config: unix.PERF_COUNT_SW_CPU_CLOCK,
			Size:   unix.PERF_ATTR_SIZE_VER5,
			Sample: uint64(time.Second) / uint64(rate),
		}
		fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open cpu-clock perf event on CPU %d: %w", cpu, err)
		}
		f.fds = append(f.fds, fd)
		l, err := link.AttachRawLink(link.RawLinkOptions{Target: fd, Program: prog, Attach: ebpf.AttachPerfEvent})
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("attach the empty program on CPU %d: %w", cpu, err)
		}
		f.links = append(f.links, l)
	}
	return f, nil
}

// stats is the empty program's run count and run time so far (bpf_stats
// must be on: enableStats).
func (f *floorProbe) stats() (*ebpf.ProgramStats, error) { return f.prog.Stats() }

func (f *floorProbe) Close() error {
	var errs []error
	for _, l := range f.links {
		errs = append(errs, l.Close())
	}
	for _, fd := range f.fds {
		errs = append(errs, unix.Close(fd))
	}
	errs = append(errs, f.prog.Close())
	return errors.Join(errs...)
}
