package profiler

import (
	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/symbolize"
)

// pythonStacks walks the Python stacks of pid's threads tids, given and
// returned by host TID. CPython's native_thread_id is the TID in the
// target's own PID namespace, which inside a container is not the host's,
// so each TID is mapped through NSpid before the two are matched.
func (s *Session) pythonStacks(pid int, tids []int) map[int][]symbolize.Frame {
	local := make([]int, 0, len(tids))
	host := make(map[int]int, len(tids)) // namespace-local TID → host TID
	for _, tid := range tids {
		l, err := process.LocalTID(pid, tid)
		if err != nil {
			continue // the thread exited
		}
		local = append(local, l)
		host[l] = tid
	}
	out := make(map[int][]symbolize.Frame, len(local))
	for l, frames := range s.python.ThreadStacks(pid, local) {
		if tid, ok := host[l]; ok {
			out[tid] = frames
		}
	}
	return out
}
