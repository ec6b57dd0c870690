package python

import (
	"bytes"
	"encoding/binary"
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
	Type      uint64 // ob_type: PyCode_Type's address for a real code object
}

// WordReader reads the 8-byte words at many addresses at once; it returns
// how many it read, from the first. process.Memory is one.
type WordReader interface {
	ReadWords(addrs, out []uint64) (int, error)
}

// ReadChecks reads the 8 check bytes of the code objects at each of addrs,
// as the walker does, into out, in as few reads as mem allows. It returns how many it read, from the
// first, and the error that stopped it.
func ReadChecks(mem WordReader, o *Offsets, addrs, out []uint64) (int, error) {
	at := make([]uint64, len(addrs))
	for i, a := range addrs {
		at[i] = a + uint64(o.CheckOffset)
	}
	n, err := mem.ReadWords(at, out)
	if err != nil {
		return n, fmt.Errorf("read check bytes of code object at %#x: %w", addrs[n], err)
	}
	return n, nil
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
	// The target runs on while we read: the object may be freed and its
	// memory reused for another code object, built field by field. So the
	// fixed part is read in one go, and read again once the strings are in:
	// if it changed, this is not one object's consistent picture.
	size := 0
	for _, off := range []int{o.ObType, o.CodeFirstLineNo, o.CheckOffset + 4, o.CodeName, o.CodeQualname, o.CodeFilename, o.CodeLineTable} {
		size = max(size, off+8)
	}
	head := make([]byte, size)
	if err := readFull(mem, addr, head); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	u64 := func(off int) uint64 { return le.Uint64(head[off:]) }
	// A freed object keeps most of its old bytes: pymalloc only writes its
	// free-list link over ob_refcnt. A count that looks like a pointer (or 0)
	// means the object is dead, and its string pointers lead to memory that
	// may already hold other strings. User-space pointers are below 1<<47;
	// a statically allocated code object of 3.14 (the shim run after a
	// class's __init__) has its flags in the count's top 16 bits.
	if rc := u64(0); rc == 0 || rc >= 1<<40 && rc < 1<<47 {
		return nil, fmt.Errorf("not a live object (ob_refcnt %#x)", rc)
	}
	c := &Code{Addr: addr, Version: v, Type: u64(o.ObType)}
	c.FirstLine = int(int32(le.Uint32(head[o.CodeFirstLineNo:])))
	c.Check = u64(o.CheckOffset)
	var err error
	if c.Name, err = readString(mem, o, u64(o.CodeName)); err != nil {
		return nil, fmt.Errorf("co_name: %w", err)
	}
	c.QualName = c.Name
	if o.CodeQualname != Absent {
		if c.QualName, err = readString(mem, o, u64(o.CodeQualname)); err != nil {
			return nil, fmt.Errorf("co_qualname: %w", err)
		}
	}
	if c.File, err = readString(mem, o, u64(o.CodeFilename)); err != nil {
		return nil, fmt.Errorf("co_filename: %w", err)
	}
	if c.LineTable, err = readBytes(mem, o, u64(o.CodeLineTable), MaxLineTable); err != nil {
		return nil, fmt.Errorf("line table: %w", err)
	}
	again := make([]byte, size)
	if err := readFull(mem, addr, again); err != nil {
		return nil, err
	}
	// ob_refcnt (the first word) changes all the time; the rest must not.
	if !bytes.Equal(head[8:], again[8:]) {
		return nil, fmt.Errorf("code object changed while it was read (freed and reused)")
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
