package process

import (
	"fmt"
	"os"
	"strconv"
)

// Descendants returns the processes whose parent is one of parents, or
// whose parent is such a process, and so on: every process started below
// parents that is alive now. It reads /proc/N/stat for each process, as
// /proc/PID/task/TID/children exists only in kernels built with
// CONFIG_PROC_CHILDREN. A process that has not exec'd yet still counts.
func Descendants(parents map[int]bool) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	ppid := make(map[int]int, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		st, err := ParseStat(b)
		if err != nil || st.State == 'Z' || st.State == 'X' {
			continue
		}
		ppid[pid] = st.PPid
	}
	// A process's parent may have a larger PID (PIDs wrap): go on until
	// nothing new joins.
	in := make(map[int]bool, len(parents))
	for p := range parents {
		in[p] = true
	}
	var out []int
	for grew := true; grew; {
		grew = false
		for pid, pp := range ppid {
			if !in[pid] && in[pp] {
				in[pid] = true
				out = append(out, pid)
				grew = true
			}
		}
	}
	return out, nil
}
