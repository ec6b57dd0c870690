package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/bprof/bprof/pkg/sampler"
)

// floorProbe is the floor under any perf_event sampler here: an empty BPF
// program (return 0) on cpu-clock events of every online CPU at the same
// rate as bprof's, run beside it so both see the same ticks. What a tick
// costs it (the timer's overflow handling, entering and leaving the
// program, bpf_stats' own clock reads) no sampler's program can go below;
// bprof's cost above it is what bprof's code adds.
type floorProbe struct {
	prog   *ebpf.Program
	events io.Closer
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
	events, err := sampler.AttachCPUClock(prog, rate)
	if err != nil {
		prog.Close()
		return nil, fmt.Errorf("attach the empty program: %w", err)
	}
	return &floorProbe{prog: prog, events: events}, nil
}

// stats is the empty program's run count and run time so far (bpf_stats
// must be on: enableStats).
func (f *floorProbe) stats() (*ebpf.ProgramStats, error) { return f.prog.Stats() }

func (f *floorProbe) Close() error {
	return errors.Join(f.events.Close(), f.prog.Close())
}
