package python

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
)

// lineDump is the output of testdata/python/linetables.py.
type lineDump struct {
	Version   [3]int `json:"version"`
	Functions []struct {
		Name        string   `json:"name"`
		FirstLineNo int      `json:"firstlineno"`
		Table       string   `json:"table"`
		Pairs       [][2]int `json:"pairs"`
	} `json:"functions"`
}

func (d *lineDump) version() Version {
	return Version{Major: d.Version[0], Minor: d.Version[1], Patch: d.Version[2]}
}

func decodeLineDump(t testing.TB, data []byte) *lineDump {
	t.Helper()
	var d lineDump
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("decode line dump: %v", err)
	}
	return &d
}

func checkLineDump(t *testing.T, d *lineDump) {
	t.Helper()
	v := d.version()
	checked := 0
	for _, fn := range d.Functions {
		table, err := hex.DecodeString(fn.Table)
		if err != nil {
			t.Fatalf("%s: decode table: %v", fn.Name, err)
		}
		for _, p := range fn.Pairs {
			got, err := Line(v, table, fn.FirstLineNo, p[0])
			if err != nil {
				t.Errorf("%s %s: Line(%d): %v", v, fn.Name, p[0], err)
				continue
			}
			if got != p[1] {
				t.Errorf("%s %s (first line %d): Line(%d) = %d, CPython says %d", v, fn.Name, fn.FirstLineNo, p[0], got, p[1])
			}
			checked++
		}
	}
	t.Logf("%s: %d functions, %d offsets", v, len(d.Functions), checked)
}

// TestLineGolden checks the committed dumps, so the decoders are tested on
// every version even where that interpreter is missing.
func TestLineGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/linetables/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden line tables: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			checkLineDump(t, decodeLineDump(t, data))
		})
	}
}

// TestLineInterpreters runs testdata/python/linetables.py under every
// interpreter on the machine and checks Line against PyCode_Addr2Line for
// every instruction of this file and of a few standard library modules.
func TestLineInterpreters(t *testing.T) {
	found := findInterpreters(t)
	if len(found) == 0 {
		testenv.Skip(t, "no CPython 3.7+ interpreter found")
	}
	script, err := filepath.Abs("../../testdata/python/linetables.py")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range found {
		t.Run(in.path, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(in.path, script).Output()
			if err != nil {
				t.Fatalf("run %s: %v", script, err)
			}
			checkLineDump(t, decodeLineDump(t, out))
		})
	}
}

func TestLineTables(t *testing.T) {
	v39, v310, v311 := Version{3, 9, 0}, Version{3, 10, 0}, Version{3, 11, 0}
	for _, tc := range []struct {
		name    string
		v       Version
		table   []byte
		first   int
		instr   int
		want    int
		wantErr bool
	}{
		{"lnotab before first", v39, []byte{4, 1, 6, 2}, 10, -1, 10, false},
		{"lnotab first range", v39, []byte{4, 1, 6, 2}, 10, 2, 10, false},
		{"lnotab second range", v39, []byte{4, 1, 6, 2}, 10, 4, 11, false},
		{"lnotab open end", v39, []byte{4, 1, 6, 2}, 10, 400, 13, false},
		{"lnotab negative delta", v39, []byte{2, 5, 2, 0xfd}, 1, 5, 3, false},
		{"lnotab long jump", v39, []byte{0, 127, 0, 127, 2, 46}, 1, 2, 301, false},
		{"3.10 units", v310, []byte{4, 1, 6, 2}, 10, 2, 13, false},
		{"3.10 no line", v310, []byte{4, 1, 6, 0x80}, 10, 3, 0, false},
		{"3.10 empty ranges move the line", v310, []byte{0, 100, 4, 1}, 1, 1, 102, false},
		{"3.10 past end", v310, []byte{4, 1}, 10, 2, 0, true},
		// 0xf0|len: code 14 long form, 0xe8: code 13; 0xd0: one-line +0; 0xd8: +1; 0x80: short form.
		{"loc short form", v311, []byte{0x81, 0x05, 0x80, 0x00}, 7, 4, 7, false},
		{"loc one line +1", v311, []byte{0xd9, 0x00, 0x01, 0x80, 0x00}, 7, 2, 8, false},
		{"loc no columns -2", v311, []byte{0xe8 | 1, 0x05, 0x80, 0x00}, 7, 2, 5, false},
		{"loc long form", v311, []byte{0xf0, 0x42, 0x01, 0x00, 0x02, 0x04}, 1, 0, 2 + 32, false},
		{"loc none", v311, []byte{0xd8, 0x00, 0x01, 0xf8, 0x80, 0x00}, 1, 2, 0, false},
		{"loc none keeps line", v311, []byte{0xd8, 0x00, 0x01, 0xf8, 0x80, 0x00}, 1, 4, 2, false},
		{"loc past end", v311, []byte{0x80, 0x00}, 1, 2, 0, true},
		{"loc no start bit", v311, []byte{0x00}, 1, 0, 0, true},
		{"loc truncated varint", v311, []byte{0xe8, 0x40}, 1, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Line(tc.v, tc.table, tc.first, tc.instr)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Line = %d, %v; want error %v", got, err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("Line = %d, want %d", got, tc.want)
			}
		})
	}
	if _, err := Line(v311, []byte{0x80, 0}, 1, 8); !errors.Is(err, ErrPastEnd) {
		t.Errorf("past end: got %v, want ErrPastEnd", err)
	}
	if _, err := Line(Version{3, 6, 0}, nil, 1, 0); err == nil {
		t.Errorf("3.6: no error")
	}
	if _, err := Line(v311, bytes.Repeat([]byte{0x80, 0}, MaxLineTable), 1, 0); err == nil {
		t.Errorf("oversized table: no error")
	}
}
