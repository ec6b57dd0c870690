package python

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// fakeDebugOffsets builds a _Py_DebugOffsets for Python 3.minor whose members
// agree with o, then applies edit.
func fakeDebugOffsets(t *testing.T, minor int, o *Offsets, edit map[string]uint64) []byte {
	t.Helper()
	values := map[string]uint64{}
	for _, c := range debugChecked {
		values[c.member] = uint64(c.get(o))
	}
	for k, v := range edit {
		values[k] = v
	}
	buf := make([]byte, 8*debugHeaderWords)
	copy(buf, debugCookie)
	binary.LittleEndian.PutUint64(buf[8:], uint64(3<<24|minor<<16|0xf0))
	for _, s := range debugLayouts[minor] {
		for _, f := range s.fields {
			buf = binary.LittleEndian.AppendUint64(buf, values[s.name+"."+f])
		}
	}
	return buf
}

func TestCheckDebugOffsets(t *testing.T) {
	for _, minor := range []int{13, 14} {
		o, err := OffsetsFor(Version{3, minor, 0})
		if err != nil {
			t.Fatal(err)
		}
		mem := fakeDebugOffsets(t, minor, o, nil)
		if err := CheckDebugOffsets(bytes.NewReader(mem), 0, o); err != nil {
			t.Errorf("3.%d: agreeing offsets: %v", minor, err)
		}
		mem = fakeDebugOffsets(t, minor, o, map[string]uint64{"thread_state.current_frame": 80})
		err = CheckDebugOffsets(bytes.NewReader(mem), 0, o)
		if err == nil || !strings.Contains(err.Error(), "thread_state.current_frame (Offsets.TstateCurrentFrame) is 72 in bprof's table but 80 in the target") {
			t.Errorf("3.%d: mismatch: %v", minor, err)
		}
		mem = fakeDebugOffsets(t, minor, o, nil)
		mem[16] = 1 // free_threaded
		if err := CheckDebugOffsets(bytes.NewReader(mem), 0, o); err == nil || !strings.Contains(err.Error(), "free-threaded") {
			t.Errorf("3.%d: free-threaded: %v", minor, err)
		}
		if err := CheckDebugOffsets(bytes.NewReader(mem[:100]), 0, o); err == nil {
			t.Errorf("3.%d: short read: no error", minor)
		}
	}
}
