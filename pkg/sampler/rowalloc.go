package sampler

import "slices"

// rowAlloc hands out runs of the kernel's unwind_rows array: first fit over
// a sorted list of free runs, merged again when freed. Files come and go
// with processes, so it must not leak runs; it need not be clever, since a
// run is allocated once per file, not per sample.
type rowAlloc struct {
	size, used uint32
	holes      []rowRun // sorted by start, never adjacent
}

type rowRun struct{ start, n uint32 }

func newRowAlloc(size uint32) *rowAlloc {
	return &rowAlloc{size: size, holes: []rowRun{{0, size}}}
}

func (a *rowAlloc) alloc(n uint32) (uint32, bool) {
	if n == 0 {
		return 0, true
	}
	for i, h := range a.holes {
		if h.n < n {
			continue
		}
		if h.n == n {
			a.holes = slices.Delete(a.holes, i, i+1)
		} else {
			a.holes[i] = rowRun{h.start + n, h.n - n}
		}
		a.used += n
		return h.start, true
	}
	return 0, false
}

func (a *rowAlloc) free(start, n uint32) {
	if n == 0 {
		return
	}
	i, _ := slices.BinarySearchFunc(a.holes, start, func(h rowRun, s uint32) int { return cmpU64(uint64(h.start), uint64(s)) })
	a.holes = slices.Insert(a.holes, i, rowRun{start, n})
	a.used -= n
	// Merge with the next run, then with the previous one.
	if i+1 < len(a.holes) && a.holes[i].start+a.holes[i].n == a.holes[i+1].start {
		a.holes[i].n += a.holes[i+1].n
		a.holes = slices.Delete(a.holes, i+1, i+2)
	}
	if i > 0 && a.holes[i-1].start+a.holes[i-1].n == a.holes[i].start {
		a.holes[i-1].n += a.holes[i].n
		a.holes = slices.Delete(a.holes, i, i+1)
	}
}
