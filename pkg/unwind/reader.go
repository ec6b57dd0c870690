package unwind

import (
	"encoding/binary"
	"fmt"
)

// reader reads little-endian DWARF values. Its error is sticky: after the
// first failure every read returns zero and leaves the offset alone, so a
// caller checks err once after a group of reads.
type reader struct {
	data []byte // readable bytes: the section up to the end of the current entry
	off  int    // offset of the next byte in data
	err  error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = &FormatError{Off: r.off, Msg: fmt.Sprintf(format, args...)}
	}
}

// need reports whether n more bytes can be read, failing when they cannot.
func (r *reader) need(n uint64) bool {
	if r.err != nil {
		return false
	}
	if left := uint64(len(r.data) - r.off); n > left {
		r.fail("need %d bytes, %d left", n, left)
		return false
	}
	return true
}

func (r *reader) u8() uint8 {
	if !r.need(1) {
		return 0
	}
	r.off++
	return r.data[r.off-1]
}

func (r *reader) u16() uint16 {
	if !r.need(2) {
		return 0
	}
	r.off += 2
	return binary.LittleEndian.Uint16(r.data[r.off-2:])
}

func (r *reader) u32() uint32 {
	if !r.need(4) {
		return 0
	}
	r.off += 4
	return binary.LittleEndian.Uint32(r.data[r.off-4:])
}

func (r *reader) u64() uint64 {
	if !r.need(8) {
		return 0
	}
	r.off += 8
	return binary.LittleEndian.Uint64(r.data[r.off-8:])
}

// maxLEB is the longest LEB128 number that fits in 64 bits.
const maxLEB = 10

func (r *reader) uleb() uint64 {
	var v uint64
	for i := 0; ; i++ {
		if i == maxLEB {
			r.fail("LEB128 number longer than %d bytes", maxLEB)
			return 0
		}
		b := r.u8()
		if r.err != nil {
			return 0
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			return v
		}
	}
}

func (r *reader) sleb() int64 {
	var v int64
	for i := 0; ; i++ {
		if i == maxLEB {
			r.fail("LEB128 number longer than %d bytes", maxLEB)
			return 0
		}
		b := r.u8()
		if r.err != nil {
			return 0
		}
		v |= int64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			if shift := 7 * (i + 1); shift < 64 && b&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
}

// bytes returns the next n bytes, without copying.
func (r *reader) bytes(n uint64) []byte {
	if !r.need(n) {
		return nil
	}
	r.off += int(n)
	return r.data[r.off-int(n) : r.off]
}

func (r *reader) skip(n uint64) { r.bytes(n) }

// cstring returns the bytes up to a NUL, and skips the NUL.
func (r *reader) cstring() []byte {
	for i := r.off; r.err == nil && i < len(r.data); i++ {
		if r.data[i] == 0 {
			s := r.data[r.off:i]
			r.off = i + 1
			return s
		}
	}
	r.fail("string not terminated")
	return nil
}
