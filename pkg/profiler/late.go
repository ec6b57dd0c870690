package profiler

import (
	"strings"
	"time"

	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/python"
	"github.com/bprof/bprof/pkg/symbolize"
)

// Late Python stacks. A thread the kernel sees before user space has read
// its thread state (a thread of a pool that blocks right after it starts)
// leaves the CPU with no Python frames on its stack: the BPF walker does not
// know where its frames are. User space learns of the thread at once (the
// walker asks for a refresh) and then, while the thread is new, reads the
// Python stack of each place it is found blocked, from the interpreter's
// memory, with the syscall it blocks in. A wait whose stack lacks Python
// frames for that reason gets the Python frames read at the same syscall:
// a blocked thread's Python stack does not change while it waits.

// lateWindow is how long after a thread first appears its blocked stacks
// are read.
const lateWindow = 2 * time.Second

// lateThread is what is known of a new thread's blocked Python stacks.
type lateThread struct {
	first  time.Time
	stacks map[string][]python.FrameRef // by the syscall it was blocked in
}

// noteThreads takes what is new about pid's threads after a refresh of its
// Python thread states: their names, while they live (a short-lived thread
// is gone by the Cut), and the stacks of those blocked now.
func (s *Session) noteThreads(pid int) {
	tids, err := process.Threads(pid)
	if err != nil {
		return
	}
	s.mu.Lock()
	for _, tid := range tids {
		k := threadKey{pid, tid}
		if _, ok := s.late[k]; ok {
			continue
		}
		s.late[k] = &lateThread{first: time.Now(), stacks: map[string][]python.FrameRef{}}
		s.threadName(pid, tid)
	}
	s.mu.Unlock()
	s.readLateStacks()
}

// readLateStacks reads the Python stacks of new threads blocked now; the
// first non-empty one per syscall is kept. Called on each refresh and at
// every look of the watch; it reports whether some thread is still in its
// lateWindow.
func (s *Session) readLateStacks() (pending bool) {
	want := map[int][]int{}
	s.mu.Lock()
	for k, l := range s.late {
		if time.Since(l.first) < lateWindow {
			want[k.pid] = append(want[k.pid], k.tid)
		}
	}
	s.mu.Unlock()
	for pid, tids := range want {
		var blocked []int
		calls := map[int]string{}
		for _, tid := range tids {
			if st, err := process.State(pid, tid); err != nil || (st != 'S' && st != 'D') {
				continue
			}
			names, err := process.KernelStack(pid, tid)
			if err != nil {
				continue
			}
			if c := syscallOf(names); c != "" {
				calls[tid] = c
				blocked = append(blocked, tid)
			}
		}
		if len(blocked) == 0 {
			continue
		}
		refs := s.pythonRefs(pid, blocked)
		s.mu.Lock()
		for tid, r := range refs {
			l := s.late[threadKey{pid, tid}]
			if l == nil || len(r) == 0 {
				continue
			}
			if _, ok := l.stacks[calls[tid]]; !ok {
				l.stacks[calls[tid]] = r
			}
		}
		s.mu.Unlock()
	}
	return len(want) > 0
}

// lateStack returns the Python stack read for thread tid blocked in the
// syscall of a wait's stack (frames, leaf first).
func (s *Session) lateStack(pid, tid int, frames []symbolize.Frame) ([]python.FrameRef, bool) {
	var kernel []string
	for _, f := range frames {
		if f.Kind == symbolize.KindKernel {
			kernel = append(kernel, f.Name)
		}
	}
	call := syscallOf(kernel)
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.late[threadKey{pid, tid}]
	if l == nil || call == "" {
		return nil, false
	}
	r, ok := l.stacks[call]
	return r, ok
}

// syscallOf is the system call a kernel stack (leaf first) is in: the name
// of its __x64_sys_ (or __se_sys_, __do_sys_) frame without that prefix.
func syscallOf(names []string) string {
	for _, n := range names {
		for _, p := range []string{"__x64_sys_", "__se_sys_", "__do_sys_", "__ia32_sys_"} {
			if c, ok := strings.CutPrefix(n, p); ok {
				return c
			}
		}
	}
	return ""
}
