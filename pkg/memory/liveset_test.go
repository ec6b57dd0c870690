package memory

import (
	"encoding/binary"
	"testing"
)

// TestDecodeSet: the control block's set word is a page-aligned address
// ORed with log2 of the slots; anything else is refused.
func TestDecodeSet(t *testing.T) {
	for _, tc := range []struct {
		word        uint64
		addr, slots uint64
		ok          bool
	}{
		{0x7f0000001000 | 12, 0x7f0000001000, 4096, true},
		{0x7f0000200000 | 24, 0x7f0000200000, 1 << 24, true},
		{0x7f0000001000 | 25, 0, 0, false}, // over the bound
		{0x7f0000001000, 0, 0, false},      // no slots
		{12, 0, 0, false},                  // no address
	} {
		addr, slots, err := decodeSet(tc.word)
		if (err == nil) != tc.ok || addr != tc.addr || slots != tc.slots {
			t.Errorf("decodeSet(%#x) = %#x, %d, %v; want %#x, %d, ok %v", tc.word, addr, slots, err, tc.addr, tc.slots, tc.ok)
		}
	}
}

// TestLiveAddrs: empty slots (0) and tombstones (1) are not blocks.
func TestLiveAddrs(t *testing.T) {
	var table []byte
	for _, v := range []uint64{0, 0x1000, 1, 0x2010, 0} {
		table = binary.LittleEndian.AppendUint64(table, v)
	}
	got := liveAddrs(table)
	if len(got) != 2 {
		t.Fatalf("liveAddrs = %v, want 0x1000 and 0x2010", got)
	}
	for _, a := range []uint64{0x1000, 0x2010} {
		if _, ok := got[a]; !ok {
			t.Errorf("liveAddrs lost %#x", a)
		}
	}
}

// FuzzLiveSet: the set word and the table come from the target's memory;
// decoding them never panics, and a table never yields 0 or 1.
func FuzzLiveSet(f *testing.F) {
	f.Add(uint64(0x7f0000001000|12), []byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint64(0), []byte{0x10, 0x20, 0x30})
	f.Add(^uint64(0), binary.LittleEndian.AppendUint64(nil, 0x7f00deadbeef))
	f.Fuzz(func(t *testing.T, word uint64, table []byte) {
		if _, slots, err := decodeSet(word); err == nil && (slots == 0 || slots > 1<<maxSetShift) {
			t.Fatalf("decodeSet(%#x) took %d slots", word, slots)
		}
		for a := range liveAddrs(table) {
			if a <= 1 {
				t.Fatalf("liveAddrs gave %#x", a)
			}
		}
	})
}
