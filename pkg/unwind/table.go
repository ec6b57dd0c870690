package unwind

import "sort"

// Row is the unwind rule from PC up to the next row's PC.
//
// A row is 16 bytes: a parse holds a row for every few bytes of .eh_frame
// (160,000 for libpython) before they are merged and compacted.
type Row struct {
	PC uint64 // ELF virtual address (as in the file's symbols and program headers)
	// CFAOffset is the offset added to rsp or rbp for KindRSP and KindRBP.
	// For KindPLT it is the threshold of the PLT expression (10 or 11: the
	// CFA is rsp+16 when rip&15 >= it, else rsp+8); for other kinds 0.
	CFAOffset int32
	// RBPOffset is where the caller's rbp was saved, relative to the CFA
	// (e.g. -16); 0 means rbp is unchanged (same value, undefined, or a rule
	// bprof cannot follow that the CFA does not depend on: see
	// Table.RBPUnknown; an offset beyond ±32 KiB is such a rule). Only
	// KindRSP and KindRBP rows set it.
	RBPOffset int16
	Kind      Kind
	// The return address is always at CFA-8 on x86-64: an FDE whose rip
	// rule is anything else gives KindUnsupported (or KindEnd when rip is
	// undefined), so Row has no field for it.
}

// sameRule reports whether a and b say the same apart from their PC.
func sameRule(a, b Row) bool {
	return a.Kind == b.Kind && a.CFAOffset == b.CFAOffset && a.RBPOffset == b.RBPOffset
}

// Table is the unwind information of one ELF file.
type Table struct {
	// Rows are sorted by PC, strictly increasing; no two adjacent rows are
	// equal apart from PC (they are merged); each FDE's range ends with a
	// KindNone row unless the next FDE starts exactly there.
	Rows []Row

	Section string // ".eh_frame" or ".debug_frame"
	FDEs    int    // FDEs read
	CIEs    int    // CIEs read

	// ByKind counts the rows the interpreter produced, by kind, before gaps
	// were closed and equal neighbours merged: the coverage of the file
	// by instruction.
	ByKind [KindUnsupported + 1]int
	// RBPUnknown counts rows (before merging) where rbp was saved in a way
	// a row cannot carry (in another register, by an expression) while the
	// CFA does not depend on rbp: they keep RBPOffset 0, so the caller's
	// rbp may be wrong above such a frame.
	RBPUnknown int
	// EmptyFDEs counts FDEs with an empty address range (skipped).
	EmptyFDEs int
	// SkippedFDEs counts FDEs left out because their CIE has an augmentation
	// bprof cannot parse, or their range wraps past the end of the address
	// space (lld's tombstone for discarded functions in .debug_frame).
	SkippedFDEs int
	// Largest is the address range of the largest FDE: the largest
	// function. In CPython that is always the bytecode loop (its huge
	// switch), which is how a stripped interpreter's loop is found when
	// LTO left it as an unnamed clone of _PyEval_EvalFrameDefault.
	Largest Range
	// Overlaps counts FDEs that start before the previous one (in address
	// order) ends. The later one wins from its start on: the earlier one is
	// cut short there.
	Overlaps int
}

// Range is [Start, End) in ELF virtual addresses.
type Range struct{ Start, End uint64 }

// Find returns the row that covers pc (binary search), and false when pc
// is before the first row. A pc after the last FDE gets its KindNone row.
func (t *Table) Find(pc uint64) (Row, bool) {
	// The first row above pc; the one before it covers pc.
	i := sort.Search(len(t.Rows), func(i int) bool { return t.Rows[i].PC > pc })
	if i == 0 {
		return Row{}, false
	}
	return t.Rows[i-1], true
}
