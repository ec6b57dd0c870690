package unwind

import "testing"

// The seed corpora in testdata/fuzz hold real sections of this machine's
// files: .eh_frame of libz.so.1, of the head of libc.so.6 (through
// __restore_rt's FDE), of the [vdso], and of testdata/prog.c built with
// gcc -O2 and -O0; .debug_frame of prog.c built with -g and no unwind
// tables.

func FuzzParseEHFrame(f *testing.F) {
	b := newEH(0x2000)
	c := b.cie(cieSpec{})
	b.fde(c, 0x1000, 0x40, cat(advance(1), defCFAOffset(16), op(opRememberState), advance(4), pltExpr(11), advance(1), op(opRestoreState)))
	f.Add(b.bytes(), b.addr)
	f.Fuzz(func(t *testing.T, data []byte, addr uint64) {
		tab, err := ParseEHFrame(data, addr)
		ranges, rerr := parse(data, true, bases{section: addr, addrSize: 8}, true)
		if err != nil {
			return
		}
		checkTable(t, tab)
		// A section Parse reads whole, the ranges-only walk reads too, and
		// to the same largest function.
		if rerr != nil || ranges.Largest != tab.Largest {
			t.Errorf("ranges only: largest %#x, err %v; full parse: largest %#x", ranges.Largest, rerr, tab.Largest)
		}
	})
}

func FuzzParseDebugFrame(f *testing.F) {
	b := newDebug()
	c := b.cie(cieSpec{version: 4})
	b.fde(c, 0x1000, 0x40, cat(advance(1), defCFAOffset(16), offset(regRBP, 2), advance(1), defCFARegister(regRBP)))
	f.Add(b.bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := ParseDebugFrame(data)
		if err != nil {
			return
		}
		checkTable(t, tab)
	})
}

// checkTable checks what every table promises.
func checkTable(t *testing.T, tab *Table) {
	t.Helper()
	produced := 0
	for _, n := range tab.ByKind {
		produced += n
	}
	if len(tab.Rows) > produced+tab.FDEs {
		t.Fatalf("%d rows from %d interpreted rows and %d FDEs", len(tab.Rows), produced, tab.FDEs)
	}
	for i, row := range tab.Rows {
		if i > 0 {
			prev := tab.Rows[i-1]
			if row.PC <= prev.PC {
				t.Fatalf("row %d at %#x after %#x", i, row.PC, prev.PC)
			}
			if sameRule(prev, row) {
				t.Fatalf("rows %d and %d say the same: %+v", i-1, i, row)
			}
		}
		switch row.Kind {
		case KindRSP, KindRBP:
		case KindPLT:
			if row.CFAOffset < 1 || row.CFAOffset > 15 || row.RBPOffset != 0 {
				t.Fatalf("row %d: PLT with offsets %+v", i, row)
			}
		case KindNone, KindSignal, KindEnd, KindUnsupported:
			if row.CFAOffset != 0 || row.RBPOffset != 0 {
				t.Fatalf("row %d: %v with offsets %+v", i, row.Kind, row)
			}
		default:
			t.Fatalf("row %d: kind %d", i, row.Kind)
		}
		if got, ok := tab.Find(row.PC); !ok || got != row {
			t.Fatalf("Find(%#x) = %+v, %v; want row %d %+v", row.PC, got, ok, i, row)
		}
	}
	if n := len(tab.Rows); n > 0 {
		if last := tab.Rows[n-1]; last.Kind != KindNone {
			t.Fatalf("last row %+v is not KindNone", last)
		}
		if _, ok := tab.Find(tab.Rows[0].PC - 1); ok && tab.Rows[0].PC > 0 {
			t.Fatalf("Find before the first row found a row")
		}
		if cs, _, err := tab.Compact(tab.Rows[0].PC); err == nil && len(cs) > n {
			t.Fatalf("Compact made %d rows of %d", len(cs), n)
		}
	}
}
