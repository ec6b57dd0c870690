package sampler

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func TestRowIndex(t *testing.T) {
	rows := []UnwindRow{{PC: 0x1000}, {PC: 0x1010}, {PC: 0x2ff0}, {PC: 0x5000}}
	index, first := rowIndex(rows)
	if want := []uint32{0, 2, 3, 3, 3, 4}; first != 1 || !slices.Equal(index, want) {
		t.Errorf("rowIndex = %v from page %d, want %v from page 1", index, first, want)
	}
	if index, _ := rowIndex([]UnwindRow{{PC: 0}, {PC: 1 << 30}}); index != nil {
		t.Errorf("sparse rows got an index of %d slots", len(index))
	}
}

// The BPF walker searches only between a page's two slots (bpf/unwind.h,
// find_row): the row it wants must always be there.
func TestRowIndexBoundsTheSearch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := 1 + r.IntN(300)
		pcs := map[uint32]bool{}
		base := uint32(r.IntN(1 << 20))
		for len(pcs) < n {
			pcs[base+uint32(r.IntN(64<<10))] = true
		}
		var rows []UnwindRow
		for pc := range pcs {
			rows = append(rows, UnwindRow{PC: pc})
		}
		slices.SortFunc(rows, func(a, b UnwindRow) int { return int(a.PC) - int(b.PC) })
		index, first := rowIndex(rows)
		if index == nil {
			t.Fatalf("no index for %d rows", n)
		}
		for range 100 {
			pc := rows[0].PC + uint32(r.IntN(int(rows[n-1].PC-rows[0].PC)+4096))
			want := sort.Search(n, func(i int) bool { return rows[i].PC > pc }) - 1
			p := pc>>unwindPageShift - first
			if p >= uint32(len(index)-1) {
				continue // past the index: the whole table is searched
			}
			lo, hi := int(index[p]), int(index[p+1])
			if lo > 0 {
				lo--
			}
			if want < lo || want >= hi {
				t.Fatalf("pc %#x: row %d outside the searched [%d, %d)", pc, want, lo, hi)
			}
		}
	}
}
