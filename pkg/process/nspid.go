package process

// LocalTID returns the ID that thread tid (as this process's PID namespace
// sees it) has in the innermost PID namespace of its process: the last
// NSpid entry of /proc/PID/task/TID/status. A process in a container knows
// its threads by these IDs (gettid, CPython's native_thread_id), so whatever
// the target itself recorded must be matched against them, not against
// host TIDs. Outside any nested namespace, it is tid itself.
func LocalTID(pid, tid int) (int, error) {
	st, err := TaskStatus(pid, tid)
	if err != nil {
		return 0, err
	}
	if len(st.NSpid) == 0 {
		return tid, nil // kernels before 4.1 have no NSpid: no nesting to see
	}
	return st.NSpid[len(st.NSpid)-1], nil
}

// LocalTIDs maps pid's threads tids (host TIDs) to their namespace-local
// TIDs (see LocalTID), and back. Whoever matches thread IDs the target
// recorded itself (CPython's thread states) asks with local and answers
// through host. A process outside any nested PID namespace (one NSpid
// entry) costs one read of its status, and its tids are returned as they
// are; otherwise each thread's status is read, and threads that exited are
// left out. All threads of a process share its PID namespace.
func LocalTIDs(pid int, tids []int) (local []int, host map[int]int) {
	host = make(map[int]int, len(tids))
	if st, err := TaskStatus(pid, pid); err == nil && len(st.NSpid) <= 1 {
		for _, tid := range tids {
			host[tid] = tid
		}
		return append([]int(nil), tids...), host
	}
	local = make([]int, 0, len(tids))
	for _, tid := range tids {
		l, err := LocalTID(pid, tid)
		if err != nil {
			continue // the thread exited
		}
		local = append(local, l)
		host[l] = tid
	}
	return local, host
}
