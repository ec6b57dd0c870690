package unwind

import "math/bits"

// Call frame instructions (DW_CFA_*). The first three keep their operand in
// the low six bits of the opcode.
const (
	opAdvanceLoc = 0x40
	opOffset     = 0x80
	opRestore    = 0xc0
	opHighMask   = 0xc0
	opLowMask    = 0x3f

	opNop              = 0x00
	opSetLoc           = 0x01
	opAdvanceLoc1      = 0x02
	opAdvanceLoc2      = 0x03
	opAdvanceLoc4      = 0x04
	opOffsetExtended   = 0x05
	opRestoreExtended  = 0x06
	opUndefined        = 0x07
	opSameValue        = 0x08
	opRegister         = 0x09
	opRememberState    = 0x0a
	opRestoreState     = 0x0b
	opDefCFA           = 0x0c
	opDefCFARegister   = 0x0d
	opDefCFAOffset     = 0x0e
	opDefCFAExpression = 0x0f
	opExpression       = 0x10
	opOffsetExtendedSF = 0x11
	opDefCFASF         = 0x12
	opDefCFAOffsetSF   = 0x13
	opValOffset        = 0x14
	opValOffsetSF      = 0x15
	opValExpression    = 0x16
	opAdvanceLoc8      = 0x1d // DW_CFA_MIPS_advance_loc8, a GNU extension
	opGNUWindowSave    = 0x2d // SPARC register windows; nothing on x86-64
	opGNUArgsSize      = 0x2e
	opGNUNegOffsetExt  = 0x2f // DW_CFA_GNU_negative_offset_extended
)

// maxRememberDepth bounds the DW_CFA_remember_state stack. Compilers nest
// one or two; the bound keeps a hostile file from costing a copy of the
// state (72 bytes) per byte of input.
const maxRememberDepth = 64

// frame is the address range of the FDE being interpreted and the location
// its instructions have reached.
type frame struct {
	start, end, loc uint64
}

// exec runs the call frame instructions in r (up to the end of its data),
// changing s. For an FDE, f is its range: a row is made each time the
// location moves on, and exec stops once the location passes the end. For
// a CIE's initial instructions f is nil: locations are read and ignored.
// Errors are left in r.
func (p *parser) exec(r *reader, c *cie, s *state, f *frame) {
	p.stack = p.stack[:0]
	for r.off < len(r.data) && r.err == nil {
		if f != nil && f.loc >= f.end {
			return
		}
		op := r.u8()
		switch op & opHighMask {
		case opAdvanceLoc:
			p.advance(r, c, s, f, uint64(op&opLowMask))
			continue
		case opOffset:
			off := scaleU(r.uleb(), c.dataAlign)
			s.set(uint64(op&opLowMask), rule{kind: ruleOffset, off: off})
			continue
		case opRestore:
			s.restore(uint64(op&opLowMask), &c.initial)
			continue
		}
		switch op {
		case opNop, opGNUWindowSave:
		case opSetLoc:
			var start uint64
			if f != nil {
				start = f.start
			}
			to := r.pointer(c.fdeEnc, &c.bases, start, f != nil, f != nil)
			if f != nil && r.err == nil {
				if to < f.loc {
					r.fail("DW_CFA_set_loc goes back from %#x to %#x", f.loc, to)
					return
				}
				p.moveTo(c, s, f, to)
			}
		case opAdvanceLoc1:
			p.advance(r, c, s, f, uint64(r.u8()))
		case opAdvanceLoc2:
			p.advance(r, c, s, f, uint64(r.u16()))
		case opAdvanceLoc4:
			p.advance(r, c, s, f, uint64(r.u32()))
		case opAdvanceLoc8:
			p.advance(r, c, s, f, r.u64())
		case opOffsetExtended, opOffsetExtendedSF, opGNUNegOffsetExt, opValOffset, opValOffsetSF:
			reg := r.uleb()
			var off int64
			if op == opOffsetExtendedSF || op == opValOffsetSF {
				off = scale(r.sleb(), c.dataAlign)
			} else {
				off = scaleU(r.uleb(), c.dataAlign)
			}
			kind := ruleOffset
			switch op {
			case opGNUNegOffsetExt:
				off = -off
			case opValOffset, opValOffsetSF:
				kind = ruleValOffset
			}
			s.set(reg, rule{kind: kind, off: off})
		case opRestoreExtended:
			s.restore(r.uleb(), &c.initial)
		case opUndefined:
			s.set(r.uleb(), rule{kind: ruleUndefined})
		case opSameValue:
			s.set(r.uleb(), rule{kind: ruleSame})
		case opRegister:
			reg := r.uleb()
			other := scaleU(r.uleb(), 1)
			s.set(reg, rule{kind: ruleRegister, off: other})
		case opRememberState:
			if len(p.stack) == maxRememberDepth {
				r.fail("DW_CFA_remember_state nested deeper than %d", maxRememberDepth)
				return
			}
			p.stack = append(p.stack, *s)
		case opRestoreState:
			if len(p.stack) == 0 {
				r.fail("DW_CFA_restore_state without DW_CFA_remember_state")
				return
			}
			// DWARF 5 6.4.2.4: the CFA rule is part of the saved state too.
			*s = p.stack[len(p.stack)-1]
			p.stack = p.stack[:len(p.stack)-1]
		case opDefCFA, opDefCFASF:
			reg := r.uleb()
			var off int64
			if op == opDefCFASF {
				off = scale(r.sleb(), c.dataAlign)
			} else {
				off = scaleU(r.uleb(), 1)
			}
			s.cfa = cfaRule{kind: cfaReg, reg: reg, off: off}
		case opDefCFARegister:
			reg := r.uleb()
			if s.cfa.kind != cfaReg {
				s.cfa = cfaRule{kind: cfaBad}
				break
			}
			s.cfa.reg = reg
		case opDefCFAOffset, opDefCFAOffsetSF:
			var off int64
			if op == opDefCFAOffsetSF {
				off = scale(r.sleb(), c.dataAlign)
			} else {
				off = scaleU(r.uleb(), 1)
			}
			if s.cfa.kind != cfaReg {
				s.cfa = cfaRule{kind: cfaBad}
				break
			}
			s.cfa.off = off
		case opDefCFAExpression:
			expr := r.bytes(r.uleb())
			if n, ok := pltThreshold(expr); ok {
				s.cfa = cfaRule{kind: cfaPLT, off: n}
			} else {
				s.cfa = cfaRule{kind: cfaExpr}
			}
		case opExpression, opValExpression:
			reg := r.uleb()
			r.skip(r.uleb())
			kind := ruleExpr
			if op == opValExpression {
				kind = ruleValExpr
			}
			s.set(reg, rule{kind: kind})
		case opGNUArgsSize:
			r.uleb()
		default:
			r.fail("unknown call frame instruction %#x", op)
		}
	}
}

// advance moves the location on by delta code alignment units.
func (p *parser) advance(r *reader, c *cie, s *state, f *frame, delta uint64) {
	if f == nil || r.err != nil {
		return
	}
	hi, by := bits.Mul64(delta, c.codeAlign)
	to, carry := bits.Add64(f.loc, by, 0)
	if hi != 0 || carry != 0 {
		r.fail("location %#x advanced by %d*%d wraps", f.loc, delta, c.codeAlign)
		return
	}
	p.moveTo(c, s, f, to)
}

// moveTo ends the row at f.loc (if the location moves) and starts one at to.
func (p *parser) moveTo(c *cie, s *state, f *frame, to uint64) {
	if to > f.loc {
		p.rows = append(p.rows, p.rowFor(c, s, f.loc))
		f.loc = to
	}
}
