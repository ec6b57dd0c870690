package unwind

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
)

// TestReadelfAgrees checks every row binutils' readelf interprets from real
// files against Find: the CFA rule, where rbp was saved, and that the
// return address is at CFA-8 (or undefined: KindEnd).
func TestReadelfAgrees(t *testing.T) {
	readelf := testenv.RequireCommand(t, "readelf")
	for _, f := range realFiles() {
		t.Run(f.name, func(t *testing.T) {
			tab := parseFile(t, f)
			rows, exact := crossCheck(t, readelf, f.path, tab)
			t.Logf("%s: %d readelf rows agree; %d (%.2f%%) represented exactly, the rest KindUnsupported",
				f.name, rows, exact, 100*float64(exact)/float64(rows))
		})
	}
}

// crossCheck compares tab, parsed from the file at path, with what readelf
// interprets from the same section. It returns the rows readelf printed and
// how many of them tab represents exactly (not KindUnsupported).
func crossCheck(t *testing.T, readelf, path string, tab *Table) (rows, exact int) {
	t.Helper()
	out, err := exec.Command(readelf, "--debug-dump=frames-interp", path).Output()
	if err != nil {
		// readelf 2.40 exits 1 on libc.so.6 with no message after
		// printing every frame: judge it by what it printed.
		if len(out) == 0 {
			t.Fatalf("readelf %s: %v", path, err)
		}
		t.Logf("readelf %s: %v (output used anyway)", path, err)
	}
	fdes := parseReadelf(t, out, tab.Section)
	if len(fdes) != tab.FDEs {
		t.Errorf("readelf lists %d FDEs, Parse read %d", len(fdes), tab.FDEs)
	}
	starts := make(map[uint64]bool, len(fdes))
	for _, fde := range fdes {
		starts[fde.start] = true
	}
	bad := 0
	for _, fde := range fdes {
		for _, rr := range fde.rows {
			if rr.loc < fde.start || rr.loc >= fde.end {
				continue
			}
			rows++
			want := expectRow(rr)
			got, ok := tab.Find(rr.loc)
			if !ok || !want.match(got) {
				if bad++; bad <= 10 {
					t.Errorf("FDE %#x..%#x at %#x: readelf says CFA %s %v, want %s, got %+v", fde.start, fde.end, rr.loc, rr.cfa, rr.regs, want, got)
				}
				continue
			}
			if got.Kind != KindUnsupported {
				exact++
			}
		}
		if !starts[fde.end] {
			if got, _ := tab.Find(fde.end); got.Kind != KindNone {
				t.Errorf("FDE %#x..%#x: after its end %+v, want KindNone", fde.start, fde.end, got)
			}
		}
	}
	if rows == 0 {
		t.Fatal("readelf printed no rows")
	}
	if bad > 0 {
		t.Errorf("%d of %d rows differ", bad, rows)
	}
	return rows, exact
}

// readelfFDE is an FDE as readelf --debug-dump=frames-interp prints it.
type readelfFDE struct {
	start, end uint64
	rows       []readelfRow
}

type readelfRow struct {
	loc  uint64
	cfa  string            // "rsp+8", "rbp+16", "exp", "rdi+0"
	regs map[string]string // column name ("rbp", "ra") to rule ("u", "c-16", "exp", "r3(rbx)")
}

var (
	readelfSection = regexp.MustCompile(`^Contents of the (\S+) section`) // "(loaded from FILE):" may follow
	readelfCIE     = regexp.MustCompile(`^([0-9a-f]+) [0-9a-f]+ [0-9a-f]+ CIE`)
	readelfFDEHead = regexp.MustCompile(`^[0-9a-f]+ [0-9a-f]+ [0-9a-f]+ FDE cie=([0-9a-f]+) pc=([0-9a-f]+)\.\.([0-9a-f]+)`)
	readelfCols    = regexp.MustCompile(`^\s+LOC\s+CFA\s+(.*)$`)
	readelfRowLine = regexp.MustCompile(`^([0-9a-f]{16}) (.*)$`)
	// A register rule prints as "r3 (rbx)": one column with a space.
	readelfRegName = regexp.MustCompile(`r(\d+) \((\w+)\)`)
)

// parseReadelf returns the FDEs readelf printed for section. An FDE
// without a table of its own starts (and stays) in its CIE's state, which
// readelf prints under the CIE.
func parseReadelf(t *testing.T, out []byte, section string) []readelfFDE {
	t.Helper()
	var (
		fdes    []readelfFDE
		inside  bool
		cieRows = map[string][]readelfRow{}
		cieOff  string // the CIE being printed, "" inside an FDE
		cols    []string
		fdeCIE  []string
	)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := readelfSection.FindStringSubmatch(line); m != nil {
			inside = m[1] == section
			continue
		}
		if !inside {
			continue
		}
		if m := readelfCIE.FindStringSubmatch(line); m != nil {
			cieOff, cols = m[1], nil
			continue
		}
		if m := readelfFDEHead.FindStringSubmatch(line); m != nil {
			start, _ := strconv.ParseUint(m[2], 16, 64)
			end, _ := strconv.ParseUint(m[3], 16, 64)
			fdes = append(fdes, readelfFDE{start: start, end: end})
			fdeCIE = append(fdeCIE, m[1])
			cieOff, cols = "", nil
			continue
		}
		if m := readelfCols.FindStringSubmatch(line); m != nil {
			cols = strings.Fields(m[1])
			continue
		}
		m := readelfRowLine.FindStringSubmatch(line)
		if m == nil || cols == nil {
			continue
		}
		loc, _ := strconv.ParseUint(m[1], 16, 64)
		fields := strings.Fields(readelfRegName.ReplaceAllString(m[2], "r$1($2)"))
		if len(fields) != len(cols)+1 {
			t.Fatalf("readelf row %q: %d fields for %d columns", line, len(fields), len(cols)+1)
		}
		row := readelfRow{loc: loc, cfa: fields[0], regs: make(map[string]string, len(cols))}
		for i, c := range cols {
			row.regs[c] = fields[i+1]
		}
		if cieOff != "" {
			cieRows[cieOff] = append(cieRows[cieOff], row)
			continue
		}
		fde := &fdes[len(fdes)-1]
		if n := len(fde.rows); n > 0 && fde.rows[n-1].loc == loc {
			fde.rows[n-1] = row // an advance by 0: the later state holds
			continue
		}
		fde.rows = append(fde.rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for i := range fdes {
		if len(fdes[i].rows) > 0 {
			continue
		}
		if rs := cieRows[fdeCIE[i]]; len(rs) > 0 {
			row := rs[len(rs)-1]
			row.loc = fdes[i].start
			fdes[i].rows = []readelfRow{row}
		}
	}
	return fdes
}

// expectation is what Find must return for a readelf row.
type expectation struct {
	row   Row
	kinds []Kind // when set, any of these kinds, offsets not compared
}

func (e expectation) match(got Row) bool {
	if e.kinds != nil {
		for _, k := range e.kinds {
			if got.Kind == k {
				return true
			}
		}
		return false
	}
	return sameRule(e.row, got)
}

func (e expectation) String() string {
	if e.kinds != nil {
		return fmt.Sprintf("one of %v", e.kinds)
	}
	return fmt.Sprintf("%v cfa=%d rbp=%d", e.row.Kind, e.row.CFAOffset, e.row.RBPOffset)
}

var readelfCFA = regexp.MustCompile(`^(\w+)([+-]\d+)$`)

// expectRow says what bprof makes of the rule readelf printed.
func expectRow(rr readelfRow) expectation {
	unsupported := expectation{row: Row{Kind: KindUnsupported}}
	ra := rr.regs["ra"]
	if ra == "u" {
		return expectation{row: Row{Kind: KindEnd}}
	}
	if rr.cfa == "exp" {
		return expectation{kinds: []Kind{KindPLT, KindSignal, KindUnsupported}}
	}
	if ra != "c-8" {
		return unsupported
	}
	if rsp, ok := rr.regs["rsp"]; ok && rsp != "u" {
		return unsupported
	}
	m := readelfCFA.FindStringSubmatch(rr.cfa)
	if m == nil {
		return unsupported
	}
	off, _ := strconv.Atoi(m[2])
	var want Row
	switch m[1] {
	case "rsp":
		want.Kind = KindRSP
	case "rbp":
		want.Kind = KindRBP
	default:
		return unsupported
	}
	want.CFAOffset = int32(off)
	switch rbp := rr.regs["rbp"]; {
	case rbp == "" || rbp == "u" || rbp == "s":
	case strings.HasPrefix(rbp, "c") && rbp != "c+0":
		n, err := strconv.Atoi(rbp[1:])
		if err != nil {
			return unsupported
		}
		want.RBPOffset = int16(n)
	case want.Kind == KindRBP:
		return unsupported
	}
	return expectation{row: want}
}
