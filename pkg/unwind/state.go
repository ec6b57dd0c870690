package unwind

// x86-64 DWARF register numbers (System V psABI, figure 3.36) of the
// registers a row depends on.
const (
	regRBP = 6
	regRSP = 7
	regRA  = 16 // the return address column (rip)
)

// ruleKind is how the caller's value of a register is found.
type ruleKind uint8

const (
	ruleNone      ruleKind = iota // no rule: a callee-saved register keeps its value
	ruleUndefined                 // DW_CFA_undefined: the value is lost
	ruleSame                      // DW_CFA_same_value
	ruleOffset                    // saved at CFA+off
	ruleValOffset                 // the value is CFA+off
	ruleRegister                  // saved in register off
	ruleExpr                      // saved at the address an expression computes
	ruleValExpr                   // the value is what an expression computes
)

type rule struct {
	kind ruleKind
	off  int64
}

// cfaKind is how the CFA is computed.
type cfaKind uint8

const (
	cfaUnset cfaKind = iota // no DW_CFA_def_cfa yet
	cfaReg                  // register reg + off
	cfaPLT                  // the PLT expression; off is its threshold
	cfaExpr                 // any other expression
	cfaBad                  // an offset or register changed while the CFA was not register+offset
)

type cfaRule struct {
	kind cfaKind
	reg  uint64
	off  int64
}

// state is what a row depends on: the CFA rule and the rules of the three
// registers the BPF unwinder restores. Other registers are read past. It is
// a small value, copied by DW_CFA_remember_state.
type state struct {
	cfa          cfaRule
	rbp, rsp, ra rule
}

// rule returns the rule of register reg, or nil when rows do not depend on it.
func (s *state) rule(reg uint64) *rule {
	switch reg {
	case regRBP:
		return &s.rbp
	case regRSP:
		return &s.rsp
	case regRA:
		return &s.ra
	}
	return nil
}

func (s *state) set(reg uint64, r rule) {
	if p := s.rule(reg); p != nil {
		*p = r
	}
}

// restore sets reg back to its rule in initial (after the CIE's instructions).
func (s *state) restore(reg uint64, initial *state) {
	if p := s.rule(reg); p != nil {
		*p = *initial.rule(reg)
	}
}

// bigOffset replaces an offset that overflowed: it fits no row, so the row
// becomes KindUnsupported.
const bigOffset = 1 << 40

// scale multiplies an operand by an alignment factor, without overflowing.
func scale(v, factor int64) int64 {
	const lim = 1 << 31
	if v > lim || v < -lim || factor > lim || factor < -lim {
		return bigOffset
	}
	return v * factor
}

// scaleU is scale for an unsigned operand.
func scaleU(v uint64, factor int64) int64 {
	if v > 1<<31 {
		return bigOffset
	}
	return scale(int64(v), factor)
}
