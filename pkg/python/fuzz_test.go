package python

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// addLineSeeds adds the real line tables of the golden dumps whose version
// uses format, with a few instruction offsets each.
func addLineSeeds(f *testing.F, format LineTableFormat) {
	files, _ := filepath.Glob("testdata/linetables/*.json")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		d := decodeLineDump(f, data)
		o, err := OffsetsFor(d.version())
		if err != nil || o.LineTable != format {
			continue
		}
		for _, fn := range d.Functions {
			table, err := hex.DecodeString(fn.Table)
			if err != nil {
				f.Fatal(err)
			}
			for i, p := range fn.Pairs {
				if i%7 == 0 {
					f.Add(table, fn.FirstLineNo, p[0])
				}
			}
		}
	}
}

func fuzzLine(f *testing.F, v Version) {
	f.Fuzz(func(t *testing.T, table []byte, firstLine, instr int) {
		line, err := Line(v, table, firstLine, instr)
		if instr < 0 && len(table) <= MaxLineTable && (err != nil || line != firstLine) {
			t.Fatalf("Line(%d) = %d, %v; want first line %d", instr, line, err, firstLine)
		}
	})
}

func FuzzLnotab(f *testing.F) {
	addLineSeeds(f, Lnotab)
	fuzzLine(f, Version{3, 9, 0})
}

func FuzzLinetable310(f *testing.F) {
	addLineSeeds(f, Linetable310)
	fuzzLine(f, Version{3, 10, 0})
}

func FuzzLocationTable(f *testing.F) {
	addLineSeeds(f, LocationTable)
	fuzzLine(f, Version{3, 12, 0})
}

// FuzzThreadNames runs ThreadNames, and the dict, int, str and instance
// decoders it is made of, on memory images. The seeds are what
// TestThreadNames read of real processes (go test -run TestThreadNames
// -update-memory rewrites them).
func FuzzThreadNames(f *testing.F) {
	files, _ := filepath.Glob("testdata/memory/*.bin")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// The seeds take about 600 reads; a smaller budget than a real call's
	// keeps each run short on images whose dicts claim 65,536 entries.
	maxReadsPerCall, maxBytesPerCall = 4096, 4<<20
	f.Fuzz(func(t *testing.T, image []byte) {
		v, runtime, mem, err := decodeMemory(image)
		if err != nil {
			return
		}
		v = Version{3, 7 + (v.Minor+1)%8, v.Patch} // 3.7–3.14, the minor kept when it is one
		o, err := OffsetsFor(v)
		if err != nil {
			t.Fatal(err)
		}
		in := &Interpreter{Version: v, RuntimeAddr: runtime, Offsets: o}
		if names, err := in.ThreadNames(mem); names == nil {
			t.Fatalf("ThreadNames returned no map (error %v)", err)
		}
		// Each decoder on its own, at the start of the first extents.
		r := newObjReader(mem, o)
		for i, e := range mem.extents {
			if i == 8 {
				break
			}
			readDict(mem, o, e.addr)
			readLong(mem, o, e.addr)
			r.readStr(e.addr)
			r.lookup(e.addr, "threading")
			r.attr(e.addr, "_name")
		}
	})
}
