package python

import (
	"errors"
	"fmt"
)

// MaxLineTable caps the size of a line table read from a target.
const MaxLineTable = 1 << 20

// LineTableError is a malformed or too short line table; Off is the byte of
// the table where decoding stopped.
type LineTableError struct {
	Off int
	Msg string
}

func (e *LineTableError) Error() string {
	return fmt.Sprintf("decode line table: %s at byte %d", e.Msg, e.Off)
}

// ErrPastEnd is wrapped by Line when the instruction offset lies beyond the
// last range of the table.
var ErrPastEnd = errors.New("instruction offset past the end of the line table")

// Line returns the source line of the instruction at instrOffset in a code
// object of Python v whose line table is table and whose co_firstlineno is
// firstLine. It returns 0 when the table says the instruction has no line
// (Python's None).
//
// instrOffset is what the stack walker records for a frame:
//   - 3.7–3.9: f_lasti, the byte offset of the last instruction started in
//     co_code (-1 before the first); the table is co_lnotab.
//   - 3.10: f_lasti in 2-byte code units (-1 before the first); the table
//     is 3.10's co_linetable, whose ranges are in bytes.
//   - 3.11+: the byte offset ptr − (code + co_code_adaptive), where ptr is
//     prev_instr (3.11, 3.12: the last instruction started, -2 before the
//     first) or instr_ptr (3.13+: the instruction executing); the table is
//     the location table of Objects/locations.md, walked in code units.
//
// As in CPython, a negative offset gives firstLine. Cost is linear in the
// table size.
func Line(v Version, table []byte, firstLine int, instrOffset int) (int, error) {
	if len(table) > MaxLineTable {
		return 0, &LineTableError{Off: MaxLineTable, Msg: "table too large"}
	}
	if instrOffset < 0 {
		return firstLine, nil
	}
	switch {
	case v.Less(3, 7) || v.AtLeast(3, 15) || v.Major != 3:
		return 0, fmt.Errorf("decode line table: unsupported Python %d.%d", v.Major, v.Minor)
	case v.Less(3, 10):
		return lnotabLine(table, firstLine, instrOffset), nil
	case v.Less(3, 11):
		return linetable310Line(table, firstLine, 2*instrOffset)
	default:
		return locationTableLine(table, firstLine, instrOffset)
	}
}

// lnotabLine decodes co_lnotab: pairs of (unsigned byte-offset increment,
// signed line increment). The line of addr is firstLine plus the line
// increments of every pair whose accumulated offset is at most addr; the
// last range has no end. A trailing odd byte is ignored, as CPython does.
func lnotabLine(table []byte, firstLine, addr int) int {
	line, start := firstLine, 0
	for i := 0; i+1 < len(table); i += 2 {
		start += int(table[i])
		if start > addr {
			break
		}
		line += int(int8(table[i+1]))
	}
	return line
}

// linetable310Line decodes 3.10's co_linetable: pairs of (unsigned byte
// length of the range, signed line delta). A delta of -128 marks a range with
// no line and leaves the running line alone; empty ranges only move the
// line.
func linetable310Line(table []byte, firstLine, addr int) (int, error) {
	line, end := firstLine, 0
	for i := 0; i+1 < len(table); i += 2 {
		start := end
		end += int(table[i])
		cur := 0
		if d := int8(table[i+1]); d != -128 {
			line += int(d)
			cur = line
		}
		if start <= addr && addr < end {
			return cur, nil
		}
	}
	return 0, fmt.Errorf("decode 3.10 line table for byte offset %d: %w", addr, ErrPastEnd)
}

// Location table entry codes (Objects/locations.md).
const (
	locOneLine0  = 10 // 10, 11, 12: line delta 0, 1, 2; two column bytes
	locNoColumns = 13 // signed varint line delta
	locLong      = 14 // signed varint line delta, then end line and columns
	locNone      = 15 // no location
)

// locationTableLine decodes the 3.11+ location table. Each entry starts with
// a byte 1CCCCLLL: code C, and L+1 code units covered. The line moves by the
// entry's delta (codes 10–14); code 15 means "no line" and does not move it.
// The remaining bytes of an entry (columns) have the top bit clear, so the
// next entry is the next byte with the top bit set.
func locationTableLine(table []byte, firstLine, addr int) (int, error) {
	line, end := firstLine, 0
	i := 0
	for i < len(table) {
		b := table[i]
		if b&0x80 == 0 {
			return 0, &LineTableError{Off: i, Msg: "entry without its start bit"}
		}
		code := int(b>>3) & 15
		start := end
		end += 2 * (int(b&7) + 1)
		var delta int
		switch {
		case code == locNoColumns || code == locLong:
			d, err := readSignedVarint(table, i+1)
			if err != nil {
				return 0, err
			}
			delta = d
		case code >= locOneLine0 && code < locNoColumns:
			delta = code - locOneLine0
		}
		line += delta
		if start <= addr && addr < end {
			if code == locNone {
				return 0, nil
			}
			return line, nil
		}
		for i++; i < len(table) && table[i]&0x80 == 0; i++ {
		}
	}
	return 0, fmt.Errorf("decode location table for byte offset %d: %w", addr, ErrPastEnd)
}

// readSignedVarint reads the varint of 6-bit groups (bit 6 = more follow,
// least significant group first) at table[i]; the low bit of the value is
// the sign.
func readSignedVarint(table []byte, i int) (int, error) {
	var v uint64
	for shift := 0; ; shift += 6 {
		if i >= len(table) {
			return 0, &LineTableError{Off: i, Msg: "truncated varint"}
		}
		if shift > 30 {
			return 0, &LineTableError{Off: i, Msg: "varint too long"}
		}
		b := table[i]
		v |= uint64(b&63) << shift
		i++
		if b&64 == 0 {
			break
		}
	}
	if v&1 != 0 {
		return -int(v >> 1), nil
	}
	return int(v >> 1), nil
}
