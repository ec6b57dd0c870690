package unwind

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// TestTableAssembly checks how FDEs are put together: gaps, neighbours,
// overlaps, empty ranges and merging.
func TestTableAssembly(t *testing.T) {
	rsp := func(pc uint64, cfa int32) Row { return Row{PC: pc, Kind: KindRSP, CFAOffset: cfa} }
	none := func(pc uint64) Row { return Row{PC: pc, Kind: KindNone} }
	type fde struct {
		start, size uint64
		insns       []byte
	}
	tests := []struct {
		name            string
		fdes            []fde
		want            []Row
		overlaps, empty int
	}{{
		name: "a gap between FDEs gets a KindNone row",
		fdes: []fde{{0x2000, 0x10, defCFAOffset(16)}, {0x1000, 0x10, nil}},
		want: []Row{rsp(0x1000, 8), none(0x1010), rsp(0x2000, 16), none(0x2010)},
	}, {
		name: "neighbours with different rules",
		fdes: []fde{{0x1000, 0x10, nil}, {0x1010, 0x10, defCFAOffset(16)}},
		want: []Row{rsp(0x1000, 8), rsp(0x1010, 16), none(0x1020)},
	}, {
		name: "neighbours with the same rule merge",
		fdes: []fde{{0x1000, 0x10, nil}, {0x1010, 0x10, nil}},
		want: []Row{rsp(0x1000, 8), none(0x1020)},
	}, {
		name:     "an FDE starting inside another cuts it short",
		fdes:     []fde{{0x1000, 0x100, cat(advance(0x20), defCFAOffset(32))}, {0x1010, 0x10, defCFAOffset(16)}},
		want:     []Row{rsp(0x1000, 8), rsp(0x1010, 16), none(0x1020)},
		overlaps: 1,
	}, {
		name:     "equal ranges: the one later in the section wins",
		fdes:     []fde{{0x1000, 0x10, defCFAOffset(16)}, {0x1000, 0x10, defCFAOffset(24)}},
		want:     []Row{rsp(0x1000, 24), none(0x1010)},
		overlaps: 1,
	}, {
		name:  "empty ranges are skipped",
		fdes:  []fde{{0x1000, 0, nil}, {0x1000, 0x10, nil}},
		want:  []Row{rsp(0x1000, 8), none(0x1010)},
		empty: 1,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newEH(0)
			c := b.cie(cieSpec{})
			for _, f := range tt.fdes {
				b.fde(c, f.start, f.size, f.insns)
			}
			tab, err := ParseEHFrame(b.bytes(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tab.Rows, tt.want) {
				t.Errorf("rows\n got %+v\nwant %+v", tab.Rows, tt.want)
			}
			if tab.Overlaps != tt.overlaps || tab.EmptyFDEs != tt.empty || tab.FDEs != len(tt.fdes) {
				t.Errorf("Overlaps, EmptyFDEs, FDEs = %d, %d, %d; want %d, %d, %d",
					tab.Overlaps, tab.EmptyFDEs, tab.FDEs, tt.overlaps, tt.empty, len(tt.fdes))
			}
		})
	}
}

// TestSectionForms reads the same FDE from the forms a section can take.
func TestSectionForms(t *testing.T) {
	want := []Row{{PC: 0x401000, Kind: KindRSP, CFAOffset: 8}, {PC: 0x401001, Kind: KindRSP, CFAOffset: 16}, {PC: 0x401040, Kind: KindNone}}
	insns := cat(advance(1), defCFAOffset(16))
	tests := []struct {
		name string
		b    *frameBuilder
		cie  cieSpec
	}{
		{"eh_frame zR pcrel", newEH(0x7000), cieSpec{}},
		{"eh_frame with 64-bit lengths", &frameBuilder{eh: true, is64: true, addr: 0x7000, enc: map[int]cieSpec{}}, cieSpec{}},
		{"eh_frame z absptr", newEH(0x7000), cieSpec{aug: "z", augData: []byte{}}},
		{"eh_frame without augmentation", newEH(0x7000), cieSpec{aug: "-"}},
		{"debug_frame version 1", newDebug(), cieSpec{}},
		{"debug_frame version 3", newDebug(), cieSpec{version: 3}},
		{"debug_frame version 4", newDebug(), cieSpec{version: 4}},
		{"debug_frame with 64-bit lengths", &frameBuilder{is64: true, enc: map[int]cieSpec{}}, cieSpec{version: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			// An unused CIE first, so CIE pointers are not all zero.
			b.cie(cieSpec{codeAlign: 4})
			c := b.cie(tt.cie)
			b.fde(c, 0x401000, 0x40, insns)
			var tab *Table
			var err error
			if b.eh {
				tab, err = ParseEHFrame(b.bytes(), b.addr)
			} else {
				tab, err = ParseDebugFrame(b.bytes())
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tab.Rows, want) {
				t.Errorf("rows\n got %+v\nwant %+v", tab.Rows, want)
			}
			if tab.CIEs != 2 || tab.FDEs != 1 {
				t.Errorf("CIEs, FDEs = %d, %d; want 2, 1", tab.CIEs, tab.FDEs)
			}
		})
	}
}

func TestUnknownAugmentationSkipsFDEs(t *testing.T) {
	b := newEH(0)
	odd := b.cie(cieSpec{aug: "zXR", augData: []byte{1, 0x1b}, fdeEnc: 0x1b})
	c := b.cie(cieSpec{})
	b.fde(odd, 0x1000, 0x10)
	b.fde(c, 0x2000, 0x10)
	tab, err := ParseEHFrame(b.bytes(), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{{PC: 0x2000, Kind: KindRSP, CFAOffset: 8}, {PC: 0x2010}}
	if !slices.Equal(tab.Rows, want) || tab.SkippedFDEs != 1 {
		t.Errorf("rows %+v, SkippedFDEs %d; want %+v, 1", tab.Rows, tab.SkippedFDEs, want)
	}
}

func TestTerminatorEndsEHFrame(t *testing.T) {
	b := newEH(0)
	c := b.cie(cieSpec{})
	b.fde(c, 0x1000, 0x10)
	data := append(b.bytes(), 0xde, 0xad) // what follows the terminator is not read
	tab, err := ParseEHFrame(data, 0)
	if err != nil || len(tab.Rows) != 2 {
		t.Fatalf("ParseEHFrame = %+v, %v", tab, err)
	}
}

// TestMalformed checks that broken sections give a *FormatError.
func TestMalformed(t *testing.T) {
	valid := func() *frameBuilder {
		b := newEH(0)
		b.cie(cieSpec{})
		return b
	}
	tests := []struct {
		name string
		data func() []byte
	}{
		{"truncated length", func() []byte { return []byte{1, 0} }},
		{"length past the end", func() []byte { return binary.LittleEndian.AppendUint32(nil, 100) }},
		{"reserved length", func() []byte { return binary.LittleEndian.AppendUint32(nil, 0xfffffff0) }},
		{"CIE pointer before the section", func() []byte {
			return []byte{8, 0, 0, 0, 0x00, 0x01, 0, 0, 0, 0, 0, 0} // length 8, CIE pointer 0x100
		}},
		{"FDE pointing at an FDE", func() []byte {
			b := valid()
			f := b.fde(0, 0x1000, 0x10)
			b.entry(uint64(len(b.buf)+4-f), make([]byte, 8))
			return b.bytes()
		}},
		{"CIE version 2", func() []byte {
			b := newEH(0)
			b.cie(cieSpec{raw: []byte{2, 0, 1, 0x78, 16}})
			b.fde(0, 0x1000, 0x10)
			return b.bytes()
		}},
		{"unknown instruction", func() []byte {
			b := valid()
			b.fde(0, 0x1000, 0x10, op(0x3e))
			return b.bytes()
		}},
		{"restore_state without remember_state", func() []byte {
			b := valid()
			b.fde(0, 0x1000, 0x10, op(opRestoreState))
			return b.bytes()
		}},
		{"remember_state nested too deep", func() []byte {
			b := valid()
			b.fde(0, 0x1000, 0x10, bytes.Repeat(op(opRememberState), maxRememberDepth+1))
			return b.bytes()
		}},
		{"truncated operand", func() []byte {
			b := valid()
			b.fde(0, 0x1000, 0x10, op(opDefCFA, 0x87))
			return b.bytes()
		}},
		{"overlong LEB128", func() []byte {
			b := valid()
			b.fde(0, 0x1000, 0x10, op(opDefCFAOffset, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01))
			return b.bytes()
		}},
		{"set_loc going back", func() []byte {
			b := newEH(0)
			b.cie(cieSpec{aug: "zR", augData: []byte{0x03}})
			b.fde(0, 0x1000, 0x10, op(opSetLoc, 0, 0x08, 0, 0))
			return b.bytes()
		}},
		{"indirect FDE address", func() []byte {
			b := newEH(0)
			b.cie(cieSpec{aug: "zR", augData: []byte{0x9b}, fdeEnc: 0x1b})
			b.fde(0, 0x1000, 0x10)
			return b.bytes()
		}},
		{"datarel FDE address without a .got", func() []byte {
			b := newEH(0)
			b.cie(cieSpec{aug: "zR", augData: []byte{0x33}, fdeEnc: 0x03})
			b.fde(0, 0x1000, 0x10)
			return b.bytes()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := ParseEHFrame(tt.data(), 0)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseEHFrame = %+v, %v; want a *FormatError", tab, err)
			}
			t.Log(err)
		})
	}
}
