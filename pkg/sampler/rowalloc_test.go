package sampler

import "testing"

func TestRowAlloc(t *testing.T) {
	a := newRowAlloc(100)
	steps := []struct {
		op         string // "alloc" or "free"
		start, n   uint32
		wantOK     bool
		wantUsed   uint32
		wantHoles  int
		wantStart  uint32
		checkStart bool
	}{
		{op: "alloc", n: 40, wantOK: true, wantUsed: 40, wantHoles: 1, wantStart: 0, checkStart: true},
		{op: "alloc", n: 40, wantOK: true, wantUsed: 80, wantHoles: 1, wantStart: 40, checkStart: true},
		{op: "alloc", n: 30, wantOK: false, wantUsed: 80, wantHoles: 1},
		{op: "free", start: 0, n: 40, wantUsed: 40, wantHoles: 2},
		{op: "alloc", n: 30, wantOK: true, wantUsed: 70, wantHoles: 2, wantStart: 0, checkStart: true},
		{op: "free", start: 40, n: 40, wantUsed: 30, wantHoles: 1}, // merges with both neighbours
		{op: "free", start: 0, n: 30, wantUsed: 0, wantHoles: 1},
		{op: "alloc", n: 100, wantOK: true, wantUsed: 100, wantHoles: 0, wantStart: 0, checkStart: true},
	}
	for i, st := range steps {
		switch st.op {
		case "alloc":
			got, ok := a.alloc(st.n)
			if ok != st.wantOK || (st.checkStart && got != st.wantStart) {
				t.Fatalf("step %d: alloc(%d) = %d, %v; want %d, %v", i, st.n, got, ok, st.wantStart, st.wantOK)
			}
		case "free":
			a.free(st.start, st.n)
		}
		if a.used != st.wantUsed || len(a.holes) != st.wantHoles {
			t.Fatalf("step %d (%s): used %d, holes %v; want used %d, %d holes", i, st.op, a.used, a.holes, st.wantUsed, st.wantHoles)
		}
	}
}
