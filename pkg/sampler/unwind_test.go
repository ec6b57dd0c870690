package sampler

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
)

// The walker finds a file's rows from Start and the index right before
// them (bpf/unwind.h, find_row): both must be where UnwindTable says, and
// freeing gives every slot back.
func TestLoadUnwindTableLayout(t *testing.T) {
	testenv.RequireRoot(t)
	s, err := New(Config{Rate: 100, UnwindRows: 1 << 12})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Something first, so the table does not start at slot 0.
	other, err := s.LoadUnwindTable([]UnwindRow{{PC: 0x10, Kind: 1, CFA: 1}})
	if err != nil {
		t.Fatal(err)
	}
	rows := []UnwindRow{{PC: 0x1000, Kind: 1, CFA: 1}, {PC: 0x1010, Kind: 2, CFA: 2, RBP: -2}, {PC: 0x2ff0, Kind: 1, CFA: 3}, {PC: 0x5000, Kind: 5}}
	tab, err := s.LoadUnwindTable(rows)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len != 4 || tab.Pages != 5 || tab.FirstPage != 1 {
		t.Fatalf("table %+v, want 4 rows, an index of 5 pages from page 1", tab)
	}
	var got profileUnwindRow
	for i, r := range rows {
		if err := s.objs.UnwindRows.Lookup(tab.Start+uint32(i), &got); err != nil {
			t.Fatal(err)
		}
		if want := (profileUnwindRow{Pc: r.PC, Kind: r.Kind, Rbp: r.RBP, Cfa: r.CFA}); got != want {
			t.Errorf("row %d = %+v, want %+v", i, got, want)
		}
	}
	for i, want := range []uint32{0, 2, 3, 3, 3, 4} {
		if err := s.objs.UnwindRows.Lookup(tab.Start-tab.Pages-1+uint32(i), &got); err != nil {
			t.Fatal(err)
		}
		if got.Pc != want {
			t.Errorf("index slot %d = %d, want %d", i, got.Pc, want)
		}
	}
	s.FreeUnwindTable(tab)
	s.FreeUnwindTable(other)
	if used, _ := s.UnwindRowsUsed(); used != 0 {
		t.Errorf("%d rows still in use after freeing both tables", used)
	}
}

// Rows are written through windows of the map's memory: a table larger
// than one window, starting mid-page, must come back whole, and the rows
// around it untouched.
func TestLoadUnwindTableAcrossWindows(t *testing.T) {
	testenv.RequireRoot(t)
	s, err := New(Config{Rate: 100, UnwindRows: 1 << 18})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before, err := s.LoadUnwindTable([]UnwindRow{{PC: 7, Kind: 1, CFA: 9}, {PC: 8, Kind: 2, CFA: 1}, {PC: 9, Kind: 5}})
	if err != nil {
		t.Fatal(err)
	}
	n := 3*rowWindowBytes/unwindRowBytes + 123
	rows := make([]UnwindRow, n)
	for i := range rows {
		rows[i] = UnwindRow{PC: uint32(i * 5), Kind: uint8(i % 7), RBP: int8(-(i % 3)), CFA: uint16(i % 1000)}
	}
	tab, err := s.LoadUnwindTable(rows)
	if err != nil {
		t.Fatal(err)
	}
	after, err := s.LoadUnwindTable([]UnwindRow{{PC: 1, Kind: 3, CFA: 4}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(slot uint32, want UnwindRow) {
		t.Helper()
		var got profileUnwindRow
		if err := s.objs.UnwindRows.Lookup(slot, &got); err != nil {
			t.Fatal(err)
		}
		if w := (profileUnwindRow{Pc: want.PC, Kind: want.Kind, Rbp: want.RBP, Cfa: want.CFA}); got != w {
			t.Fatalf("slot %d = %+v, want %+v", slot, got, w)
		}
	}
	for i := 0; i < n; i += 1 + i%97 {
		check(tab.Start+uint32(i), rows[i])
	}
	check(tab.Start+uint32(n-1), rows[n-1])
	check(before.Start+2, UnwindRow{PC: 9, Kind: 5})
	check(after.Start, UnwindRow{PC: 1, Kind: 3, CFA: 4})
}

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
