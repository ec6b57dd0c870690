package python

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxString caps the length, in code points, of a string read from a target.
const MaxString = 4096

// PyASCIIObject.state bits, the same in 3.7–3.14 default builds:
// interned:2, kind:3, compact:1, ascii:1.
const (
	stateKindShift = 2
	stateKindMask  = 7
	stateCompact   = 1 << 5
	stateASCII     = 1 << 6
)

// readString reads a str object at addr. Compact strings are supported:
// ASCII data follows PyASCIIObject, other kinds (1, 2 or 4 bytes a code
// point) follow PyCompactUnicodeObject. Longer strings are cut at MaxString.
func readString(mem io.ReaderAt, o *Offsets, addr uint64) (string, error) {
	if addr == 0 {
		return "", fmt.Errorf("read string: null pointer")
	}
	var hdr [40]byte // up to and including state
	if err := readFull(mem, addr, hdr[:o.UnicodeState+4]); err != nil {
		return "", fmt.Errorf("read string at %#x: %w", addr, err)
	}
	n := int64(binary.LittleEndian.Uint64(hdr[o.UnicodeLength:]))
	state := binary.LittleEndian.Uint32(hdr[o.UnicodeState:])
	if n < 0 {
		return "", fmt.Errorf("read string at %#x: negative length %d", addr, n)
	}
	if state&stateCompact == 0 {
		return "", fmt.Errorf("read string at %#x: not a compact string", addr)
	}
	if n > MaxString {
		n = MaxString
	}
	kind := int(state>>stateKindShift) & stateKindMask
	if state&stateASCII != 0 {
		b := make([]byte, n)
		if err := readFull(mem, at(addr, o.ASCIIDataOffset), b); err != nil {
			return "", fmt.Errorf("read string data at %#x: %w", addr, err)
		}
		return string(b), nil
	}
	if kind != 1 && kind != 2 && kind != 4 {
		return "", fmt.Errorf("read string at %#x: bad kind %d", addr, kind)
	}
	b := make([]byte, n*int64(kind))
	if err := readFull(mem, at(addr, o.CompactUnicodeData), b); err != nil {
		return "", fmt.Errorf("read string data at %#x: %w", addr, err)
	}
	var s strings.Builder
	for i := 0; i < len(b); i += kind {
		var r rune
		switch kind {
		case 1:
			r = rune(b[i])
		case 2:
			r = rune(binary.LittleEndian.Uint16(b[i:]))
		case 4:
			r = rune(binary.LittleEndian.Uint32(b[i:]))
		}
		if !utf8.ValidRune(r) {
			r = utf8.RuneError
		}
		s.WriteRune(r)
	}
	return s.String(), nil
}

// readBytes reads a bytes object at addr, refusing more than max bytes.
func readBytes(mem io.ReaderAt, o *Offsets, addr uint64, max int) ([]byte, error) {
	if addr == 0 {
		return nil, fmt.Errorf("read bytes: null pointer")
	}
	size, err := readU64(mem, at(addr, o.BytesSize))
	if err != nil {
		return nil, fmt.Errorf("read bytes at %#x: %w", addr, err)
	}
	if int64(size) < 0 || size > uint64(max) {
		return nil, fmt.Errorf("read bytes at %#x: size %d over the cap of %d", addr, int64(size), max)
	}
	b := make([]byte, size)
	if err := readFull(mem, at(addr, o.BytesData), b); err != nil {
		return nil, fmt.Errorf("read bytes data at %#x: %w", addr, err)
	}
	return b, nil
}
