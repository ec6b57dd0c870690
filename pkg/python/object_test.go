package python

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unicode/utf16"
)

// fakeString lays out a compact str object for o at the start of a buffer.
func fakeString(o *Offsets, s string, kind int) []byte {
	runes := []rune(s)
	ascii := kind == 0
	data := o.CompactUnicodeData
	if ascii {
		data, kind = o.ASCIIDataOffset, 1
	}
	buf := make([]byte, data+len(runes)*kind+kind)
	binary.LittleEndian.PutUint64(buf[o.UnicodeLength:], uint64(len(runes)))
	state := uint32(kind)<<stateKindShift | stateCompact
	if ascii {
		state |= stateASCII
	}
	binary.LittleEndian.PutUint32(buf[o.UnicodeState:], state)
	for i, r := range runes {
		p := buf[data+i*kind:]
		switch kind {
		case 1:
			p[0] = byte(r)
		case 2:
			binary.LittleEndian.PutUint16(p, uint16(r))
		case 4:
			binary.LittleEndian.PutUint32(p, uint32(r))
		}
	}
	return buf
}

func TestReadString(t *testing.T) {
	for _, minor := range []int{7, 11, 12, 14} {
		o, _ := OffsetsFor(Version{3, minor, 0})
		for _, tc := range []struct {
			s    string
			kind int
		}{
			{"main", 0},
			{"", 0},
			{"café", 1},
			{"Ωμέγα", 2},
			{"𝔣𝔯𝔞𝔨", 4},
		} {
			if tc.kind == 2 && len(utf16.Encode([]rune(tc.s))) != len([]rune(tc.s)) {
				t.Fatal("bad test string")
			}
			mem := append(make([]byte, 16), fakeString(o, tc.s, tc.kind)...)
			got, err := readString(bytes.NewReader(mem), o, 16)
			if err != nil || got != tc.s {
				t.Errorf("3.%d kind %d: readString = %q, %v; want %q", minor, tc.kind, got, err, tc.s)
			}
		}
		long := append(make([]byte, 8), fakeString(o, string(bytes.Repeat([]byte("x"), MaxString+10)), 0)...)
		if got, err := readString(bytes.NewReader(long), o, 8); err != nil || len(got) != MaxString {
			t.Errorf("3.%d long string: %d bytes, %v", minor, len(got), err)
		}
		notCompact := append(make([]byte, 8), fakeString(o, "x", 0)...)
		notCompact[8+o.UnicodeState] &^= stateCompact
		if _, err := readString(bytes.NewReader(notCompact), o, 8); err == nil {
			t.Errorf("3.%d: legacy string: no error", minor)
		}
	}
}
