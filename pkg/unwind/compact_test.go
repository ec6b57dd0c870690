package unwind

import (
	"slices"
	"testing"
)

func TestCompactRow(t *testing.T) {
	tests := []struct {
		name      string
		row       Row
		want      Compact
		downgrade bool
	}{
		{"rsp", Row{Kind: KindRSP, CFAOffset: 16, RBPOffset: -16}, Compact{Kind: 1, CFA: 2, RBP: -2}, false},
		{"rbp", Row{Kind: KindRBP, CFAOffset: 16, RBPOffset: -16}, Compact{Kind: 2, CFA: 2, RBP: -2}, false},
		{"largest CFA", Row{Kind: KindRSP, CFAOffset: 8 * 65535}, Compact{Kind: 1, CFA: 65535}, false},
		{"lowest rbp", Row{Kind: KindRSP, CFAOffset: 8, RBPOffset: -8 * 128}, Compact{Kind: 1, CFA: 1, RBP: -128}, false},
		{"CFA not a multiple of 8", Row{Kind: KindRSP, CFAOffset: 12}, Compact{Kind: 6}, true},
		{"rbp not a multiple of 8", Row{Kind: KindRBP, CFAOffset: 16, RBPOffset: -12}, Compact{Kind: 6}, true},
		{"CFA too large", Row{Kind: KindRSP, CFAOffset: 8 * 65536}, Compact{Kind: 6}, true},
		{"negative CFA", Row{Kind: KindRBP, CFAOffset: -8}, Compact{Kind: 6}, true},
		{"rbp too far", Row{Kind: KindRSP, CFAOffset: 8, RBPOffset: -8 * 129}, Compact{Kind: 6}, true},
		{"PLT keeps its threshold", Row{Kind: KindPLT, CFAOffset: 11}, Compact{Kind: 3, CFA: 11}, false},
		{"signal", Row{Kind: KindSignal}, Compact{Kind: 4}, false},
		{"end", Row{Kind: KindEnd}, Compact{Kind: 5}, false},
		{"unsupported", Row{Kind: KindUnsupported}, Compact{Kind: 6}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.row.PC = 0x401234
			tab := &Table{Rows: []Row{tt.row, {PC: 0x401300}}}
			got, n, err := tab.Compact(0x400000)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.PC = 0x1234
			want := []Compact{tt.want, {PC: 0x1300}}
			if !slices.Equal(got, want) {
				t.Errorf("Compact = %+v, want %+v", got, want)
			}
			if (n == 1) != tt.downgrade {
				t.Errorf("downgraded %d rows, want downgrade %v", n, tt.downgrade)
			}
		})
	}
}

func TestCompactTable(t *testing.T) {
	rows := []Row{
		{PC: 0x1000, Kind: KindRSP, CFAOffset: 8},
		{PC: 0x1001, Kind: KindRSP, CFAOffset: 12},
		{PC: 0x1002, Kind: KindRSP, CFAOffset: 20}, // downgraded too: merged into the row before
		{PC: 0x1003, Kind: KindUnsupported},        // the same once encoded
		{PC: 0x1004, Kind: KindRSP, CFAOffset: 8},
		{PC: 0x1010, Kind: KindNone},
	}
	tab := &Table{Rows: rows}
	got, n, err := tab.Compact(0x1000)
	if err != nil {
		t.Fatal(err)
	}
	want := []Compact{{PC: 0, Kind: 1, CFA: 1}, {PC: 1, Kind: 6}, {PC: 4, Kind: 1, CFA: 1}, {PC: 0x10, Kind: 0}}
	if !slices.Equal(got, want) || n != 2 {
		t.Errorf("Compact = %+v, %d; want %+v, 2", got, n, want)
	}

	if _, _, err := tab.Compact(0x1001); err == nil {
		t.Error("Compact with a base above the first row: no error")
	}
	far := &Table{Rows: []Row{{PC: 0x1000, Kind: KindRSP, CFAOffset: 8}, {PC: 0x1000 + 1<<32}}}
	if _, _, err := far.Compact(0x1000); err == nil {
		t.Error("Compact of rows 4 GiB apart: no error")
	}
}
