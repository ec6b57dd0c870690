package unwind

import "math"

// rowFor turns the state at pc into a row, counting it.
func (p *parser) rowFor(c *cie, s *state, pc uint64) Row {
	row, rbpUnknown := classify(c, s)
	row.PC = pc
	p.t.ByKind[row.Kind]++
	if rbpUnknown {
		p.t.RBPUnknown++
	}
	return row
}

// classify decides the kind and offsets of a row. rbpUnknown reports that
// rbp's rule could not be followed but did not matter to the CFA, so the
// row keeps rbp as unchanged.
func classify(c *cie, s *state) (row Row, rbpUnknown bool) {
	unsupported := Row{Kind: KindUnsupported}
	if c.signal {
		// The kernel put the caller's registers in a ucontext at rsp: the
		// rules only say so in DWARF expressions, the kind says it to BPF.
		return Row{Kind: KindSignal}, false
	}
	if s.ra.kind == ruleUndefined {
		return Row{Kind: KindEnd}, false
	}
	if c.raReg != regRA || s.ra.kind != ruleOffset || s.ra.off != -8 {
		return unsupported, false
	}
	if s.rsp.kind != ruleNone {
		// The caller's rsp is the CFA; a rule for rsp says otherwise.
		return unsupported, false
	}
	switch s.cfa.kind {
	case cfaReg:
		switch s.cfa.reg {
		case regRSP:
			row.Kind = KindRSP
		case regRBP:
			row.Kind = KindRBP
		default:
			return unsupported, false
		}
		if !fitsInt32(s.cfa.off) {
			return unsupported, false
		}
		row.CFAOffset = int32(s.cfa.off)
	case cfaPLT:
		row.Kind = KindPLT
		row.CFAOffset = int32(s.cfa.off)
	default:
		return unsupported, false
	}
	switch s.rbp.kind {
	case ruleNone, ruleSame, ruleUndefined:
		return row, false
	case ruleOffset:
		// CFA+0 cannot be told from "unchanged", and PLT rows carry no
		// rbp offset; neither happens in compiled code.
		if row.Kind != KindPLT && s.rbp.off != 0 && s.rbp.off >= math.MinInt16 && s.rbp.off <= math.MaxInt16 {
			row.RBPOffset = int16(s.rbp.off)
			return row, false
		}
	}
	// The caller's rbp is somewhere a row cannot say. That only stops this
	// frame's unwinding when its CFA is computed from rbp.
	if row.Kind == KindRBP {
		return unsupported, false
	}
	return row, true
}

func fitsInt32(v int64) bool { return v >= math.MinInt32 && v <= math.MaxInt32 }
