package unwind

import (
	"encoding/binary"
	"slices"
	"testing"
)

// TestInstructions runs hand-built FDEs for [0x1000, 0x1100) through
// ParseEHFrame and compares the whole table.
func TestInstructions(t *testing.T) {
	const start, size, end = 0x1000, 0x100, 0x1100
	rsp := func(pc uint64, cfa int32, rbp int16) Row {
		return Row{PC: pc, Kind: KindRSP, CFAOffset: cfa, RBPOffset: rbp}
	}
	rbp := func(pc uint64, cfa int32, rbp int16) Row {
		return Row{PC: pc, Kind: KindRBP, CFAOffset: cfa, RBPOffset: rbp}
	}
	kind := func(pc uint64, k Kind) Row { return Row{PC: pc, Kind: k} }
	none := kind(end, KindNone)
	tests := []struct {
		name  string
		cie   cieSpec
		insns []byte
		want  []Row
		// counts checked when set
		rbpUnknown int
	}{{
		name:  "no instructions: the CIE's state",
		insns: nil,
		want:  []Row{rsp(start, 8, 0), none},
	}, {
		name: "frame pointer prologue and epilogue",
		insns: cat(advance(1), defCFAOffset(16), offset(regRBP, 2),
			advance(3), defCFARegister(regRBP),
			advance(0x20), defCFA(regRSP, 8), restore(regRBP)),
		want: []Row{rsp(start, 8, 0), rsp(0x1001, 16, -16), rbp(0x1004, 16, -16), rsp(0x1024, 8, 0), none},
	}, {
		name: "remember and restore state, CFA included",
		insns: cat(advance(1), defCFAOffset(16), op(opRememberState),
			advance(2), defCFAOffset(8), advance(1), op(opRestoreState), advance(5), defCFAOffset(24)),
		want: []Row{rsp(start, 8, 0), rsp(0x1001, 16, 0), rsp(0x1003, 8, 0), rsp(0x1004, 16, 0), rsp(0x1009, 24, 0), none},
	}, {
		name: "restore_extended goes back to the CIE's rule",
		cie:  cieSpec{insns: cat(usualCIE, offset(regRBP, 2))},
		insns: cat(op(opOffsetExtendedSF, regRBP), sleb(3), advance(1),
			op(opRestoreExtended, regRBP), advance(1), op(opSameValue, regRBP)),
		want: []Row{rsp(start, 8, -24), rsp(0x1001, 8, -16), rsp(0x1002, 8, 0), none},
	}, {
		name:  "advance_loc forms, scaled by the code alignment factor",
		cie:   cieSpec{codeAlign: 4},
		insns: cat(advance(1), defCFAOffset(16), op(opAdvanceLoc1, 2), defCFAOffset(24), op(opAdvanceLoc2, 3, 0), defCFAOffset(32), op(opAdvanceLoc4, 4, 0, 0, 0), defCFAOffset(40)),
		want:  []Row{rsp(start, 8, 0), rsp(0x1004, 16, 0), rsp(0x100c, 24, 0), rsp(0x1018, 32, 0), rsp(0x1028, 40, 0), none},
	}, {
		name:  "set_loc with the FDE's pointer encoding",
		cie:   cieSpec{aug: "zR", augData: []byte{0x03}}, // udata4
		insns: cat(op(opSetLoc), binary.LittleEndian.AppendUint32(nil, 0x1010), defCFAOffset(16)),
		want:  []Row{rsp(start, 8, 0), rsp(0x1010, 16, 0), none},
	}, {
		name:  "rows past the FDE's end are dropped",
		insns: cat(advance(8), defCFAOffset(16), op(opAdvanceLoc2, 0, 1), defCFAOffset(24), advance(1)),
		want:  []Row{rsp(start, 8, 0), rsp(0x1008, 16, 0), none},
	}, {
		// GNU_negative_offset_extended negates the factored offset: with
		// the factor -8 it saves above the CFA, as libgcc reads it.
		name:  "factored and signed forms",
		insns: cat(op(opDefCFASF, regRSP), sleb(-2), op(opGNUNegOffsetExt, regRBP, 3), advance(1), op(opDefCFAOffsetSF), sleb(-4), op(opOffsetExtended, regRBP, 4)),
		want:  []Row{rsp(start, 16, 24), rsp(0x1001, 32, -32), none},
	}, {
		name:  "nop, args_size, window_save and other registers change nothing",
		insns: cat(op(opNop, opGNUArgsSize, 0x10, opGNUWindowSave), offset(3, 2), op(opValOffset, 12, 3), op(opRegister, 13, 14), op(opExpression, 3, 2, 0x77, 0)),
		want:  []Row{rsp(start, 8, 0), none},
	}, {
		name:  "def_cfa_expression that is not the PLT's",
		insns: cat(advance(4), defCFAExpr(0x77, 0xa0, 0x01, 0x06)), // breg7 160; deref
		want:  []Row{rsp(start, 8, 0), kind(0x1004, KindUnsupported), none},
	}, {
		name:  "PLT expression with lit11",
		insns: cat(defCFAOffset(16), advance(6), defCFAOffset(24), advance(10), pltExpr(11)),
		want:  []Row{rsp(start, 16, 0), rsp(0x1006, 24, 0), {PC: 0x1010, Kind: KindPLT, CFAOffset: 11}, none},
	}, {
		name:  "PLT expression with lit10",
		insns: pltExpr(10),
		want:  []Row{{PC: start, Kind: KindPLT, CFAOffset: 10}, none},
	}, {
		name:  "PLT expression with one operator changed",
		insns: defCFAExpr(0x77, 8, 0x80, 0, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x1c), // minus
		want:  []Row{kind(start, KindUnsupported), none},
	}, {
		name:  "undefined rip: the outermost frame",
		insns: cat(advance(2), op(opUndefined, regRA)),
		want:  []Row{rsp(start, 8, 0), kind(0x1002, KindEnd), none},
	}, {
		name: "undefined rip in the CIE (crt1's _start)",
		cie:  cieSpec{insns: cat(defCFA(regRSP, 8), op(opUndefined, regRA))},
		want: []Row{kind(start, KindEnd), none},
	}, {
		name:  "CFA based on another register",
		insns: cat(advance(1), defCFA(12, 8)),
		want:  []Row{rsp(start, 8, 0), kind(0x1001, KindUnsupported), none},
	}, {
		name:  "return address not at CFA-8",
		insns: offset(regRA, 2),
		want:  []Row{kind(start, KindUnsupported), none},
	}, {
		name:  "a rule for rsp",
		insns: op(opRegister, regRSP, 8),
		want:  []Row{kind(start, KindUnsupported), none},
	}, {
		name:       "rbp in another register while the CFA is rsp-based",
		insns:      cat(op(opRegister, regRBP, 3), advance(1), defCFARegister(regRBP)),
		want:       []Row{rsp(start, 8, 0), kind(0x1001, KindUnsupported), none},
		rbpUnknown: 1,
	}, {
		name:       "rbp saved in a PLT row",
		insns:      cat(pltExpr(11), offset(regRBP, 2)),
		want:       []Row{{PC: start, Kind: KindPLT, CFAOffset: 11}, none},
		rbpUnknown: 1,
	}, {
		name:  "CFA offset that is no multiple of 8 is kept",
		insns: defCFAOffset(12),
		want:  []Row{rsp(start, 12, 0), none},
	}, {
		name:  "def_cfa_offset after an expression",
		insns: cat(pltExpr(11), advance(1), defCFAOffset(16)),
		want:  []Row{{PC: start, Kind: KindPLT, CFAOffset: 11}, kind(0x1001, KindUnsupported), none},
	}, {
		name:  "signal frame CIE",
		cie:   cieSpec{aug: "zRS", augData: []byte{0x1b}, insns: []byte{}},
		insns: defCFAExpr(0x77, 0xa0, 0x01, 0x06),
		want:  []Row{kind(start, KindSignal), none},
	}, {
		name:  "version 3 CIE, 'zPLR' with an indirect personality",
		cie:   cieSpec{version: 3, aug: "zPLR", augData: []byte{0x9b, 1, 2, 3, 4, 0x1b, 0x1b}, fdeEnc: 0x1b},
		insns: cat(advance(1), defCFAOffset(16)),
		want:  []Row{rsp(start, 8, 0), rsp(0x1001, 16, 0), none},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newEH(0x5000)
			c := b.cie(tt.cie)
			b.fde(c, start, size, tt.insns)
			tab, err := ParseEHFrame(b.bytes(), b.addr)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tab.Rows, tt.want) {
				t.Errorf("rows\n got %+v\nwant %+v", tab.Rows, tt.want)
			}
			if tab.RBPUnknown != tt.rbpUnknown {
				t.Errorf("RBPUnknown = %d, want %d", tab.RBPUnknown, tt.rbpUnknown)
			}
			if tab.FDEs != 1 || tab.CIEs != 1 {
				t.Errorf("FDEs, CIEs = %d, %d; want 1, 1", tab.FDEs, tab.CIEs)
			}
		})
	}
}
