package python

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// readFull reads len(b) bytes at addr. A short read is an error.
func readFull(mem io.ReaderAt, addr uint64, b []byte) error {
	if addr > math.MaxInt64-uint64(len(b)) {
		return fmt.Errorf("address %#x out of range", addr)
	}
	n, err := mem.ReadAt(b, int64(addr))
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func readU64(mem io.ReaderAt, addr uint64) (uint64, error) {
	var b [8]byte
	if err := readFull(mem, addr, b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

func readI32(mem io.ReaderAt, addr uint64) (int32, error) {
	var b [4]byte
	if err := readFull(mem, addr, b[:]); err != nil {
		return 0, err
	}
	return int32(binary.LittleEndian.Uint32(b[:])), nil
}

func readU8(mem io.ReaderAt, addr uint64) (uint8, error) {
	var b [1]byte
	if err := readFull(mem, addr, b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// at returns base+off for a field offset that must be present.
func at(base uint64, off int) uint64 { return base + uint64(off) }
