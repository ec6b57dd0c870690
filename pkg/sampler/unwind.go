package sampler

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"

	"github.com/bprof/bprof/pkg/unwind"
	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// UnwindRow is one row of a file's unwind table in the form the BPF walker
// reads (bpf/types.h, struct unwind_row): from PC (relative to the table's
// base, see UnwindMapping.Bias) up to the next row's PC, the caller's frame
// is found by this rule. pkg/unwind builds them; they are its Compact rows,
// so a table goes from the parser to the kernel without another copy.
type UnwindRow = unwind.Compact

// UnwindTable is where a file's rows live in the kernel's table: Len rows
// from Start, right after an index of Pages + 1 slots by 4 KiB page of PC,
// the first for page FirstPage (bpf/types.h, struct unwind_map).
type UnwindTable struct{ Start, Len, Pages, FirstPage uint32 }

// unwindPageShift is UNWIND_PAGE_SHIFT: the index has a slot per 1<<12 bytes of PC.
const unwindPageShift = 12

// rowIndex returns, for each page of the rows' PCs from the first row's
// and one past the last, how many rows start below it; nil when the rows
// are so sparse that the index would outgrow them (the walker then
// searches the whole table).
func rowIndex(rows []UnwindRow) (index []uint32, firstPage uint32) {
	firstPage = rows[0].PC >> unwindPageShift
	pages := rows[len(rows)-1].PC>>unwindPageShift - firstPage + 1
	if pages > uint32(len(rows))+1024 {
		return nil, 0
	}
	index = make([]uint32, pages+1)
	r := 0
	for p := range index {
		limit := uint64(firstPage+uint32(p)) << unwindPageShift
		for r < len(rows) && uint64(rows[r].PC) < limit {
			r++
		}
		index[p] = uint32(r)
	}
	return index, firstPage
}

// UnwindMapping is an executable mapping of a target and the table that
// covers it; a zero Table means frame pointers for that code.
type UnwindMapping struct {
	Start, End uint64 // [Start, End) in the target
	Bias       uint64 // a runtime pc minus Bias is the PC its rows use
	Table      UnwindTable
}

// MaxUnwindMappings is how many executable mappings of one process the BPF
// walker knows; code in others is walked by frame pointers.
const MaxUnwindMappings = 512

// LoadUnwindTable copies a file's rows, sorted by PC, into the kernel.
// The rows stay until FreeUnwindTable.
func (s *Sampler) LoadUnwindTable(rows []UnwindRow) (UnwindTable, error) {
	if len(rows) == 0 {
		return UnwindTable{}, nil
	}
	index, firstPage := rowIndex(rows)
	slots := uint32(len(rows))
	if index != nil {
		slots += uint32(len(index))
	}
	s.rowsMu.Lock()
	start, ok := s.rows.alloc(slots)
	used, size := s.rows.used, s.rows.size
	s.rowsMu.Unlock()
	if !ok {
		return UnwindTable{}, fmt.Errorf("load unwind table of %d rows: %d of %d rows in use; raise the limit with --unwind-rows", len(rows), used, size)
	}
	t := UnwindTable{Start: start, Len: uint32(len(rows))}
	if index != nil {
		t.Start += uint32(len(index))
		t.Pages, t.FirstPage = uint32(len(index)-1), firstPage
		slots := make([]UnwindRow, len(index))
		for i, n := range index {
			slots[i].PC = n
		}
		if err := s.writeRows(start, slots); err != nil {
			s.FreeUnwindTable(t)
			return UnwindTable{}, fmt.Errorf("load unwind table index of %d pages: %w", t.Pages, err)
		}
	}
	if err := s.writeRows(t.Start, rows); err != nil {
		s.FreeUnwindTable(t)
		return UnwindTable{}, fmt.Errorf("load unwind table of %d rows: %w", len(rows), err)
	}
	return t, nil
}

// unwindRowBytes is the size of struct unwind_row.
const unwindRowBytes = 8

// rowWindowBytes is how much of unwind_rows is mapped at a time.
const rowWindowBytes = 256 << 10

// writeRows writes rows from slot first of unwind_rows with plain stores
// into the map's memory (it is mmapable): a map update per row cost ~100 ns,
// ~10 ms for a Python process's tables at start-up. A window at a time is
// mapped, so the pages written leave bprof's RSS again at once. Rows are
// written before any mapping points the walker at them, so it never reads a
// half-written one.
func (s *Sampler) writeRows(first uint32, rows []UnwindRow) error {
	page := uint64(os.Getpagesize())
	end := (uint64(first) + uint64(len(rows))) * unwindRowBytes
	for i := 0; i < len(rows); {
		off := (uint64(first) + uint64(i)) * unwindRowBytes
		base := off &^ (page - 1)
		stop := min(base+rowWindowBytes, end)
		mem, err := unix.Mmap(s.objs.UnwindRows.FD(), int64(base), int((stop-base+page-1)&^(page-1)),
			unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return fmt.Errorf("map unwind rows at byte %#x: %w", base, err)
		}
		n := int((stop - off) / unwindRowBytes)
		dst := mem[off-base : stop-base]
		for j, r := range rows[i : i+n] {
			// struct unwind_row, little-endian (the BPF object is
			// bpfel): pc, kind, rbp, cfa in one store.
			binary.LittleEndian.PutUint64(dst[j*unwindRowBytes:],
				uint64(r.PC)|uint64(r.Kind)<<32|uint64(uint8(r.RBP))<<40|uint64(r.CFA)<<48)
		}
		i += n
		if err := unix.Munmap(mem); err != nil {
			return fmt.Errorf("unmap unwind rows at byte %#x: %w", base, err)
		}
	}
	return nil
}

// FreeUnwindTable gives a table's rows back. No mapping may still use it.
func (s *Sampler) FreeUnwindTable(t UnwindTable) {
	if t.Len == 0 {
		return
	}
	start, n := t.Start, t.Len
	if t.Pages > 0 {
		start -= t.Pages + 1
		n += t.Pages + 1
	}
	s.rowsMu.Lock()
	s.rows.free(start, n)
	s.rowsMu.Unlock()
}

// UnwindRowsUsed returns the rows in use and the table's size.
func (s *Sampler) UnwindRowsUsed() (used, size int) {
	s.rowsMu.Lock()
	defer s.rowsMu.Unlock()
	return int(s.rows.used), int(s.rows.size)
}

// SetUnwindMappings replaces what the native walker knows of pid's code.
// From then on pid's user stacks are walked by unwind tables, with frame
// pointers for code no table covers. Mappings beyond MaxUnwindMappings
// are left out (walked by frame pointers); it returns how many.
func (s *Sampler) SetUnwindMappings(pid int, ms []UnwindMapping) (dropped int, err error) {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b UnwindMapping) int { return cmpU64(a.Start, b.Start) })
	if len(ms) > MaxUnwindMappings {
		dropped = len(ms) - MaxUnwindMappings
		ms = ms[:MaxUnwindMappings]
	}
	var p profileUnwindProc
	p.N = uint32(len(ms))
	p.Gen = unwindGen.Add(1)
	for i, m := range ms {
		if m.End <= m.Start {
			return dropped, fmt.Errorf("set unwind mappings of %d: empty mapping at %#x", pid, m.Start)
		}
		if i > 0 && m.Start < ms[i-1].End {
			return dropped, fmt.Errorf("set unwind mappings of %d: mappings at %#x and %#x overlap", pid, ms[i-1].Start, m.Start)
		}
		p.Maps[i] = profileUnwindMap{Start: m.Start, End: m.End, Bias: m.Bias, Rows: m.Table.Start, Nrows: m.Table.Len,
			Pages: m.Table.Pages, FirstPage: m.Table.FirstPage}
	}
	if err := s.objs.UnwindProcs.Put(uint32(pid), &p); err != nil {
		return dropped, fmt.Errorf("set unwind mappings of %d: %w", pid, err)
	}
	return dropped, nil
}

// unwindGen numbers every SetUnwindMappings: the BPF walker trusts what it
// remembers of a process's last walk only while the generation is the same.
var unwindGen atomic.Uint32

// forgetUnwind drops pid's mappings: its stacks go back to frame pointers.
func (s *Sampler) forgetUnwind(pid int) error {
	if err := s.objs.UnwindProcs.Delete(uint32(pid)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("forget unwind mappings of %d: %w", pid, err)
	}
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
