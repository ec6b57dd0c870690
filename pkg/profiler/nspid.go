package profiler

import (
	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/python"
	"github.com/bprof/bprof/pkg/symbolize"
)

// CPython knows its threads by their TID in the target's own PID namespace
// (native_thread_id, and glibc's record of it before 3.11), which inside a
// container is not the host's. Everything bprof matches against Python's
// threads goes through NSpid: asked by host TID, answered by host TID.

// pythonStacks walks the Python stacks of pid's threads tids, by host TID.
func (s *Session) pythonStacks(pid int, tids []int) map[int][]symbolize.Frame {
	local, host := process.LocalTIDs(pid, tids)
	out := make(map[int][]symbolize.Frame, len(local))
	for l, frames := range s.python.ThreadStacks(pid, local) {
		if tid, ok := host[l]; ok {
			out[tid] = frames
		}
	}
	return out
}

// pythonRefs is pythonStacks before naming: the frames as the BPF walker
// records them.
func (s *Session) pythonRefs(pid int, tids []int) map[int][]python.FrameRef {
	local, host := process.LocalTIDs(pid, tids)
	out := make(map[int][]python.FrameRef, len(local))
	for l, refs := range s.python.ThreadRefs(pid, local) {
		if tid, ok := host[l]; ok {
			out[tid] = refs
		}
	}
	return out
}

// pythonNames is the threading names of pid's live threads, by host TID.
func (s *Session) pythonNames(pid int) (map[int]string, error) {
	names, err := s.python.ThreadNames(pid)
	if err != nil {
		return nil, err
	}
	tids, err := process.Threads(pid)
	if err != nil {
		return nil, err
	}
	_, host := process.LocalTIDs(pid, tids)
	out := make(map[int]string, len(names))
	for l, name := range names {
		if tid, ok := host[l]; ok {
			out[tid] = name
		}
	}
	return out, nil
}
