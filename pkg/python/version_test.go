package python

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestVersionFromFileName(t *testing.T) {
	for _, tc := range []struct {
		path string
		want Version
		ok   bool
	}{
		{"/usr/bin/python3.11", Version{3, 11, 0}, true},
		{"python3.7m", Version{3, 7, 0}, true},
		{"/usr/lib/libpython3.12.so.1.0", Version{3, 12, 0}, true},
		{"libpython3.7m.so.1.0", Version{3, 7, 0}, true},
		{"libpython3.13.so", Version{3, 13, 0}, true},
		{"libpython3.14d.so.1.0", Version{3, 14, 0}, true},
		{"python3.11-config", Version{}, false},
		{"python3", Version{}, false},
		{"python3.13t", Version{}, false},
		{"libpython3.13t.so.1.0", Version{}, false},
		{"libpython3.so", Version{}, false},
		{"python3.12.so", Version{}, false},
		{"libpython3.12", Version{}, false},
		{"libpython3.12.a", Version{}, false},
	} {
		got, err := VersionFromFileName(tc.path)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("VersionFromFileName(%q) = %v, %v; want %v ok=%v", tc.path, got, err, tc.want, tc.ok)
		}
		if IsInterpreterFile(tc.path) != tc.ok {
			t.Errorf("IsInterpreterFile(%q) = %v", tc.path, !tc.ok)
		}
	}
}

func TestVersionFromMemory(t *testing.T) {
	if got := VersionFromHex(0x030b07f0); got != (Version{3, 11, 7}) {
		t.Errorf("VersionFromHex = %v", got)
	}
	mem := make([]byte, 64)
	binary.LittleEndian.PutUint32(mem[8:], 0x030c01f0)
	if v, err := ReadPyVersion(bytes.NewReader(mem), 8); err != nil || v != (Version{3, 12, 1}) {
		t.Errorf("ReadPyVersion = %v, %v", v, err)
	}
	copy(mem[16:], debugCookie)
	binary.LittleEndian.PutUint64(mem[24:], 0x030e0af0)
	if v, ft, err := ReadDebugVersion(bytes.NewReader(mem), 16); err != nil || ft || v != (Version{3, 14, 10}) {
		t.Errorf("ReadDebugVersion = %v, %v, %v", v, ft, err)
	}
	if _, _, err := ReadDebugVersion(bytes.NewReader(mem), 0); err == nil {
		t.Errorf("ReadDebugVersion without cookie: no error")
	}
	if _, err := ReadPyVersion(bytes.NewReader(mem), 60); err == nil {
		t.Errorf("ReadPyVersion past the end: no error")
	}
}

func TestOffsetsFor(t *testing.T) {
	for minor := 7; minor <= 14; minor++ {
		o, err := OffsetsFor(Version{3, minor, 0})
		if err != nil {
			t.Fatalf("3.%d: %v", minor, err)
		}
		// Exactly one way to the current frame.
		n := 0
		for _, off := range []int{o.TstateFrame, o.TstateCframe, o.TstateCurrentFrame} {
			if off != Absent {
				n++
			}
		}
		if n != 1 || (o.TstateCframe != Absent) != (o.CframeCurrentFrame != Absent) {
			t.Errorf("3.%d: current frame reached %d ways", minor, n)
		}
		if (o.FrameKind == FrameObjectKind) != (minor <= 10) || (o.CodeAdaptive == Absent) != (minor <= 10) {
			t.Errorf("3.%d: frame kind %d, CodeAdaptive %d", minor, o.FrameKind, o.CodeAdaptive)
		}
		// The check window ends with co_firstlineno.
		if o.CheckOffset+4 != o.CodeFirstLineNo {
			t.Errorf("3.%d: CheckOffset %d does not end at co_firstlineno %d", minor, o.CheckOffset, o.CodeFirstLineNo)
		}
	}
	for _, v := range []Version{{3, 6, 15}, {3, 15, 0}, {2, 7, 18}} {
		_, err := OffsetsFor(v)
		if err == nil || !strings.Contains(err.Error(), "bprof supports 3.7–3.14") {
			t.Errorf("OffsetsFor(%v) = %v", v, err)
		}
	}
}
