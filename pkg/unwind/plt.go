package unwind

// DWARF expression operators in the PLT expression.
const (
	exprLit0   = 0x30 // DW_OP_lit0; lit1..lit31 follow
	exprBreg0  = 0x70 // DW_OP_breg0; breg1..breg31 follow
	exprAnd    = 0x1a
	exprPlus   = 0x22
	exprShl    = 0x24
	exprGe     = 0x2a
	exprRegRIP = 16
)

// pltThreshold recognises the CFA expression GNU ld emits for lazy-binding
// PLT entries:
//
//	DW_OP_breg7 (rsp) 8; DW_OP_breg16 (rip) 0; DW_OP_lit15; DW_OP_and;
//	DW_OP_litN; DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus
//
// that is rsp+8, plus 8 when rip&15 >= N: an entry pushes its relocation
// index N bytes in (N is 11 for the classic 16-byte entry, 10 in some
// layouts). It returns N. Any other expression is not a PLT.
func pltThreshold(expr []byte) (int64, bool) {
	r := reader{data: expr}
	if r.u8() != exprBreg0+regRSP || r.sleb() != 8 {
		return 0, false
	}
	if r.u8() != exprBreg0+exprRegRIP || r.sleb() != 0 {
		return 0, false
	}
	if r.u8() != exprLit0+15 || r.u8() != exprAnd {
		return 0, false
	}
	lit := r.u8()
	if lit < exprLit0+1 || lit > exprLit0+15 {
		return 0, false
	}
	for _, op := range [...]byte{exprGe, exprLit0 + 3, exprShl, exprPlus} {
		if r.u8() != op {
			return 0, false
		}
	}
	if r.err != nil || r.off != len(expr) {
		return 0, false
	}
	return int64(lit - exprLit0), true
}
