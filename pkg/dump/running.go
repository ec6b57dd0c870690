package dump

import (
	"context"
	"fmt"
	"time"

	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/profiler"
	"github.com/bprof/bprof/pkg/symbolize"
	"github.com/google/pprof/profile"
)

// SampleRunning fills in the whole stacks of d's threads that were on the
// CPU: a thread that runs has no saved registers to read, but a sample
// taken on the CPU has them. It loads bprof's BPF programs (the start-up of
// a recording: a second or two, more on a busy machine), samples the
// process for window, and gives each such thread the stack it was sampled
// in most often (any one, when all differ), then unloads them. The stack
// is from a moment after the rest of the dump.
func SampleRunning(d *Process, window time.Duration) error {
	running := map[int64]*Thread{}
	for i := range d.Threads {
		if d.Threads[i].State == OnCPU {
			running[int64(d.Threads[i].TID)] = &d.Threads[i]
		}
	}
	if len(running) == 0 {
		return nil
	}
	sess, err := profiler.NewSession(profiler.Options{})
	if err != nil {
		return fmt.Errorf("sample running threads: %w", err)
	}
	defer sess.Close()
	if err := sess.Add(d.PID); err != nil {
		return fmt.Errorf("sample running threads: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	if err := sess.Run(ctx); err != nil {
		return fmt.Errorf("sample running threads: %w", err)
	}
	p, _, _ := sess.Cut()
	best := map[int64]*profile.Sample{}
	for _, s := range p.Sample {
		tid := s.NumLabel["thread_id"]
		if len(tid) != 1 || running[tid[0]] == nil {
			continue
		}
		if b := best[tid[0]]; b == nil || s.Value[0] > b.Value[0] {
			best[tid[0]] = s
		}
	}
	for tid, th := range running {
		s := best[tid]
		if s == nil {
			th.Why = fmt.Sprintf("native and kernel frames: not read, the thread was on the CPU but not sampled in %s", window)
			continue
		}
		th.Python, th.Native, th.Kernel = nil, nil, nil
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				f := frameOf(loc, l)
				switch f.Kind {
				case symbolize.KindPython:
					th.Python = append(th.Python, f)
				case symbolize.KindKernel:
					th.Kernel = append(th.Kernel, f)
				default:
					th.Native = append(th.Native, f)
				}
			}
		}
		th.Why = fmt.Sprintf("all frames from a sample taken on the CPU in the %s after the dump", window)
	}
	return nil
}

// frameOf turns a pprof frame bprof wrote back into a symbolize.Frame
// (docs/CONVENTIONS.md: the mapping's file tells the kind).
func frameOf(loc *profile.Location, l profile.Line) symbolize.Frame {
	f := symbolize.Frame{Name: l.Function.Name, Line: l.Line}
	file := ""
	if loc.Mapping != nil {
		file = loc.Mapping.File
	}
	switch file {
	case export.PythonMapping:
		f.Kind, f.File = symbolize.KindPython, l.Function.Filename
	case export.KernelMapping:
		f.Kind = symbolize.KindKernel
	case export.PseudoMapping:
		f.Kind = symbolize.KindPseudo
	default:
		f.Kind, f.Module = symbolize.KindNative, &symbolize.Module{Path: file}
	}
	return f
}
