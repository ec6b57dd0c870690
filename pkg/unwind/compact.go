package unwind

import (
	"fmt"
	"math"
)

// Compact is the 8-byte form of a row the BPF unwinder reads (struct
// unwind_row in bpf/types.h). RBP and CFA are in units of 8 bytes, except
// that for KindPLT, CFA holds the PLT threshold itself (10 or 11).
type Compact struct {
	PC   uint32 // row PC - base
	Kind uint8
	RBP  int8
	CFA  uint16
}

// Compact encodes the rows relative to base, which must be at most the first
// row's PC, with every PC - base fitting in 32 bits. A KindRSP or KindRBP
// row whose offsets are not multiples of 8 or do not fit becomes
// KindUnsupported; Compact returns how many rows were downgraded so. Rows
// that become equal to the row before them are merged.
func (t *Table) Compact(base uint64) ([]Compact, int, error) {
	out := make([]Compact, 0, len(t.Rows))
	downgraded := 0
	for _, row := range t.Rows {
		if row.PC < base || row.PC-base > math.MaxUint32 {
			return nil, 0, fmt.Errorf("compact row at %#x: more than 4 GiB from base %#x", row.PC, base)
		}
		c, ok := compactRule(row)
		if !ok {
			c = Compact{Kind: uint8(KindUnsupported)}
			downgraded++
		}
		c.PC = uint32(row.PC - base)
		if n := len(out); n > 0 && out[n-1].Kind == c.Kind && out[n-1].RBP == c.RBP && out[n-1].CFA == c.CFA {
			continue
		}
		out = append(out, c)
	}
	return out, downgraded, nil
}

// compactRule encodes a row's rule, or reports that its offsets do not fit.
func compactRule(row Row) (Compact, bool) {
	c := Compact{Kind: uint8(row.Kind)}
	switch row.Kind {
	case KindRSP, KindRBP:
		if row.CFAOffset%8 != 0 || row.RBPOffset%8 != 0 {
			return c, false
		}
		cfa, rbp := row.CFAOffset/8, row.RBPOffset/8
		if cfa < 0 || cfa > math.MaxUint16 || rbp < math.MinInt8 || rbp > math.MaxInt8 {
			return c, false
		}
		c.CFA, c.RBP = uint16(cfa), int8(rbp)
	case KindPLT:
		if row.CFAOffset < 0 || row.CFAOffset > math.MaxUint16 {
			return c, false
		}
		c.CFA = uint16(row.CFAOffset)
	}
	return c, true
}
