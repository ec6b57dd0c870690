package dump

import (
	"errors"
	"fmt"
	"time"

	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/symbolize"
)

// State is what a thread was doing.
type State uint8

const (
	OnCPU   State = iota // running or runnable
	Waiting              // blocked (sleeping, in I/O, on a lock)
	GILWait              // blocked waiting for the GIL
	Stopped              // stopped (SIGSTOP, a debugger) or exiting
)

func (s State) String() string {
	switch s {
	case OnCPU:
		return "on CPU"
	case Waiting:
		return "waiting"
	case GILWait:
		return "waiting for the GIL"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Thread is one thread's stack, each kind of frame leaf first.
type Thread struct {
	TID    int
	Name   string
	State  State
	Sched  byte // the scheduler's letter: R, S, D, T, ...
	Python []symbolize.Frame
	Native []symbolize.Frame
	Kernel []symbolize.Frame
	// Why names a kind of frame that could not be read ("" when all were).
	Why string
}

// Process is a dump of one process.
type Process struct {
	PID     int
	Name    string
	Python  string // the CPython version, "" when none was found
	Note    string // why the Python frames are missing, when they are
	Threads []Thread
	Took    time.Duration // from the first read to the last
}

// Take reads the stacks of every thread of pid once.
func Take(pid int) (*Process, error) {
	if !process.Exists(pid) {
		return nil, fmt.Errorf("no process with PID %d: check the PID (ps -p %d)", pid, pid)
	}
	began := time.Now()
	tids, err := process.Threads(pid)
	if err != nil {
		return nil, fmt.Errorf("dump %d: %w", pid, err)
	}
	d := &Process{PID: pid}
	d.Name, _ = process.Comm(pid, pid)
	native := symbolize.NewNative(process.NewCache())
	py := symbolize.NewPython(native)
	in, _, err := py.Attach(pid)
	switch {
	case err != nil:
		d.Note = err.Error()
	case in == nil:
		d.Note = "no CPython found in the process"
	default:
		d.Python = in.Version.String()
	}
	u := newUnwinder(pid, native)
	defer u.close()
	for _, tid := range tids {
		th, err := readThread(pid, tid, u)
		if err != nil {
			continue // the thread exited meanwhile
		}
		d.Threads = append(d.Threads, th)
	}
	// CPython knows its threads by their TIDs in its own PID namespace,
	// which inside a container are not the host's: ask with those, and
	// answer by host TID.
	local, host := process.LocalTIDs(pid, tids)
	pyStacks := map[int][]symbolize.Frame{}
	for l, frames := range py.ThreadStacks(pid, local) {
		if h, ok := host[l]; ok {
			pyStacks[h] = frames
		}
	}
	names := map[int]string{} // threading's names, where Python knows the thread
	if byLocal, err := py.ThreadNames(pid); err == nil {
		for l, name := range byLocal {
			if h, ok := host[l]; ok {
				names[h] = name
			}
		}
	}
	for i := range d.Threads {
		th := &d.Threads[i]
		th.Python = pyStacks[th.TID]
		if n, ok := names[th.TID]; ok {
			th.Name = n
		}
		if th.State == Waiting && symbolize.GILWait(th.Native) {
			th.State = GILWait
		}
	}
	if d.Python != "" && len(pyStacks) == 0 && d.Note == "" {
		d.Note = "Python " + d.Python + ": no thread state could be tied to its thread (3.11+ records it; before, glibc's pthread does): Python frames left out"
	}
	d.Took = time.Since(began)
	return d, nil
}

// readThread reads one thread's state, name, kernel and native frames.
func readThread(pid, tid int, u *unwinder) (Thread, error) {
	th := Thread{TID: tid}
	sched, err := process.State(pid, tid)
	if err != nil {
		return th, err
	}
	th.Sched = sched
	th.Name, _ = process.Comm(pid, tid)
	switch sched {
	case 'R':
		th.State = OnCPU
		th.Why = "native and kernel frames: not read, the thread was on the CPU"
		return th, nil
	case 'S', 'D', 'I':
		th.State = Waiting
	default:
		th.State = Stopped
	}
	if names, err := process.KernelStack(pid, tid); err == nil {
		for _, n := range names {
			th.Kernel = append(th.Kernel, symbolize.Frame{Kind: symbolize.KindKernel, Name: n})
		}
	}
	bl, err := process.ReadBlocked(pid, tid)
	switch {
	case errors.Is(err, process.ErrRunning):
		th.State = OnCPU
		th.Why = "native frames: not read, the thread woke up meanwhile"
	case err != nil:
		th.Why = "native frames: " + err.Error()
	default:
		th.Native = u.stack(bl.PC, bl.SP)
	}
	return th, nil
}
