package python

import (
	"fmt"
	"io"
)

// Code is what bprof keeps of a code object.
type Code struct {
	Addr      uint64
	Version   Version
	Name      string // co_name
	QualName  string // co_qualname (3.11+); co_name before
	File      string // co_filename
	FirstLine int    // co_firstlineno
	// Check is the 8 bytes at Offsets.CheckOffset, the value the walker
	// records with each frame; a frame whose check differs was recorded for
	// another code object that lived at the same address.
	Check     uint64
	LineTable []byte // co_lnotab (≤3.9) or co_linetable
}

// ReadCode reads the code object at addr. Strings are cut at MaxString code
// points and the line table may be at most MaxLineTable bytes.
func ReadCode(mem io.ReaderAt, o *Offsets, v Version, addr uint64) (*Code, error) {
	c, err := readCode(mem, o, v, addr)
	if err != nil {
		return nil, fmt.Errorf("read code object at %#x: %w", addr, err)
	}
	return c, nil
}

func readCode(mem io.ReaderAt, o *Offsets, v Version, addr uint64) (*Code, error) {
	if addr == 0 {
		return nil, fmt.Errorf("null pointer")
	}
	c := &Code{Addr: addr, Version: v}
	first, err := readI32(mem, at(addr, o.CodeFirstLineNo))
	if err != nil {
		return nil, err
	}
	c.FirstLine = int(first)
	if c.Check, err = readU64(mem, at(addr, o.CheckOffset)); err != nil {
		return nil, err
	}
	ptr := func(off int) (uint64, error) { return readU64(mem, at(addr, off)) }
	str := func(off int) (string, error) {
		p, err := ptr(off)
		if err != nil {
			return "", err
		}
		return readString(mem, o, p)
	}
	if c.Name, err = str(o.CodeName); err != nil {
		return nil, fmt.Errorf("co_name: %w", err)
	}
	c.QualName = c.Name
	if o.CodeQualname != Absent {
		if c.QualName, err = str(o.CodeQualname); err != nil {
			return nil, fmt.Errorf("co_qualname: %w", err)
		}
	}
	if c.File, err = str(o.CodeFilename); err != nil {
		return nil, fmt.Errorf("co_filename: %w", err)
	}
	lt, err := ptr(o.CodeLineTable)
	if err != nil {
		return nil, err
	}
	if c.LineTable, err = readBytes(mem, o, lt, MaxLineTable); err != nil {
		return nil, fmt.Errorf("line table: %w", err)
	}
	return c, nil
}

// Line returns the line executing at instrOffset, as recorded by the walker
// (see the package function Line), or 0 when it is not known.
func (c *Code) Line(instrOffset int) int {
	line, err := Line(c.Version, c.LineTable, c.FirstLine, instrOffset)
	if err != nil {
		return 0
	}
	return line
}
