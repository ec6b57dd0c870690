package profiler

import (
	"strings"

	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/sampler"
	"github.com/bprof/bprof/pkg/symbolize"
)

// Off-CPU time reaches the profile three ways: samples with their stack and
// exact duration (waits of at least the threshold), per-thread totals for the
// rest (short or uncaptured waits), and, for threads that were blocked when
// the recording began, a snapshot of their stack taken from /proc and from
// the interpreter's memory at that moment. So every thread's wall time adds
// up to the recording's span whatever it did.

var offCPUState = [...]string{0: "sleep", 1: "runqueue"}

func stateName(s uint32) string {
	if int(s) < len(offCPUState) {
		return offCPUState[s]
	}
	return "sleep"
}

// blockedThread is a thread found off the CPU when its process was added.
type blockedThread struct {
	pid    int
	frames []symbolize.Frame // leaf first: kernel frames, then Python frames
}

// snapshotBlocked records the stacks of pid's threads that are blocked now.
func (s *Session) snapshotBlocked(pid int) {
	tids, err := process.Threads(pid)
	if err != nil {
		return
	}
	var blocked []int
	for _, tid := range tids {
		if st, err := process.State(pid, tid); err == nil && (st == 'S' || st == 'D') {
			blocked = append(blocked, tid)
		}
	}
	pyStacks := s.pythonStacks(pid, blocked) // one walk of the thread list for all
	for _, tid := range blocked {
		var frames []symbolize.Frame
		if names, err := process.KernelStack(pid, tid); err == nil {
			for _, n := range names {
				frames = append(frames, symbolize.Frame{Kind: symbolize.KindKernel, Name: n})
			}
		}
		frames = append(frames, pyStacks[tid]...)
		s.mu.Lock()
		s.blocked[tid] = &blockedThread{pid: pid, frames: frames}
		s.mu.Unlock()
	}
}

// tracingFrame reports kernel frames of the tracing machinery itself (the
// tracepoint and the BPF program), which top every stack the sched_switch
// program takes and say nothing about the wait.
func tracingFrame(f *symbolize.Frame) bool {
	if f.Kind != symbolize.KindKernel {
		return false
	}
	n := f.Name
	return n == "_einittext" || strings.HasPrefix(n, "bpf_trace_run") || strings.HasPrefix(n, "__bpf_trace") ||
		strings.HasPrefix(n, "__traceiter_") || strings.HasPrefix(n, "bpf_prog_") || strings.HasPrefix(n, "[kernel]+")
}

// addOffCPUSample adds one wait with its stack. Called with s.mu held.
func (s *Session) addOffCPUSample(smp *sampler.Sample, frames []symbolize.Frame) {
	for i := 0; i < len(frames) && i < 8; i++ {
		if tracingFrame(&frames[i]) {
			frames = frames[i+1:]
			i = -1
		}
	}
	state := stateName(smp.State)
	all := make([]symbolize.Frame, 0, len(frames)+1)
	all = append(all, export.Pseudo("[off-cpu: "+state+"]"))
	all = append(all, frames...)
	s.builder.Add(all, export.Labels{PID: smp.PID, TID: smp.TID, ThreadName: smp.Comm, State: state},
		export.Values{Wall: int64(smp.Value)})
}

// addOffCPUTotals adds waits that came without a stack. Called with s.mu held.
func (s *Session) addOffCPUTotals(totals []sampler.OffCPUTotal) {
	for _, t := range totals {
		var frames []symbolize.Frame
		state := ""
		switch t.Kind {
		case sampler.OffCPUShort:
			frames = []symbolize.Frame{export.Pseudo("[short waits]")}
		case sampler.OffCPUUncaptured:
			frames = []symbolize.Frame{export.Pseudo("[off-cpu: stack not captured]")}
		default: // blocked since before the recording, or all through it
			state = "sleep"
			frames = []symbolize.Frame{export.Pseudo("[off-cpu: sleep]")}
			if b := s.blocked[t.TID]; b != nil && len(b.frames) > 0 {
				frames = append(frames, b.frames...)
			} else {
				frames = append(frames, export.Pseudo("[blocked before recording]"))
			}
		}
		s.builder.Add(frames, export.Labels{PID: t.PID, TID: t.TID, ThreadName: s.threadName(t.PID, t.TID), State: state},
			export.Values{Wall: int64(t.NS)})
	}
}

// threadName is the thread's comm, cached. Called with s.mu held.
func (s *Session) threadName(pid, tid int) string {
	if n, ok := s.names[tid]; ok {
		return n
	}
	n, err := process.Comm(pid, tid)
	if err != nil {
		n = ""
	}
	s.names[tid] = n
	return n
}

// drainOffCPU moves the kernel's per-thread totals into the current profile.
func (s *Session) drainOffCPU() {
	if !s.opts.OffCPU {
		return
	}
	totals, err := s.sampler.OffCPUTotals()
	if err != nil {
		s.opts.Warn(err.Error())
	}
	s.mu.Lock()
	s.addOffCPUTotals(totals)
	s.mu.Unlock()
}

// closeOffCPU ends the waits still open when the recording stops, and gives
// threads that never ran during it their whole span.
func (s *Session) closeOffCPU(pids []int) {
	if !s.opts.OffCPU {
		return
	}
	now := sampler.Monotonic()
	start := s.sampler.OffCPUStart()
	samples, totals, seen, err := s.sampler.CloseOffCPU(now)
	if err != nil {
		s.opts.Warn(err.Error())
	}
	for i := range samples {
		frames := s.symbolize(&samples[i])
		s.mu.Lock()
		s.addOffCPUSample(&samples[i], frames)
		s.mu.Unlock()
	}
	s.drainOffCPU()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addOffCPUTotals(totals)
	for _, pid := range pids {
		tids, err := process.Threads(pid)
		if err != nil {
			continue
		}
		for _, tid := range tids {
			if seen[tid] || s.threads[tid] || start == 0 {
				continue
			}
			s.addOffCPUTotals([]sampler.OffCPUTotal{{PID: pid, TID: tid, Kind: sampler.OffCPUWhole, NS: now - start, Count: 1}})
		}
	}
}
