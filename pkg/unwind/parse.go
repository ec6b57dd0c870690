package unwind

import (
	"cmp"
	"debug/elf"
	"fmt"
	"slices"
)

// Parse reads the unwind table of f from its .eh_frame, or from its
// .debug_frame when it has no .eh_frame (a file whose .eh_frame is
// NOBITS, like a separate debug file, counts as having none). It returns
// ErrNoUnwindInfo when f has neither, and an error for anything but x86-64.
func Parse(f *elf.File) (*Table, error) {
	data, eh, b, err := frameSection(f)
	if err != nil {
		return nil, err
	}
	return parse(data, eh, b, false)
}

// LargestFunction returns the address range of f's largest FDE, as
// Table.Largest, reading only the FDEs' ranges: a small part of what Parse
// costs, for a caller that needs nothing else.
func LargestFunction(f *elf.File) (Range, error) {
	data, eh, b, err := frameSection(f)
	if err != nil {
		return Range{}, err
	}
	t, err := parse(data, eh, b, true)
	if err != nil {
		return Range{}, err
	}
	return t.Largest, nil
}

// frameSection returns the section Parse reads and how to read it.
func frameSection(f *elf.File) (data []byte, eh bool, b bases, err error) {
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		return nil, false, b, fmt.Errorf("parse unwind tables: %v %v is not x86-64", f.Class, f.Machine)
	}
	if s := f.Section(".eh_frame"); s != nil && s.Type != elf.SHT_NOBITS && s.Size > 0 {
		data, err := s.Data()
		if err != nil {
			return nil, false, b, fmt.Errorf("read .eh_frame: %w", err)
		}
		b = bases{section: s.Addr, addrSize: 8}
		if text := f.Section(".text"); text != nil {
			b.text, b.hasText = text.Addr, true
		}
		if got := f.Section(".got"); got != nil {
			b.data, b.hasData = got.Addr, true
		}
		return data, true, b, nil
	}
	if s := f.Section(".debug_frame"); s != nil && s.Type != elf.SHT_NOBITS {
		data, err := s.Data() // decompressed when SHF_COMPRESSED
		if err != nil {
			return nil, false, b, fmt.Errorf("read .debug_frame: %w", err)
		}
		return data, false, bases{addrSize: 8}, nil
	}
	return nil, false, b, ErrNoUnwindInfo
}

// ParseEHFrame parses raw .eh_frame bytes loaded at virtual address addr
// (pcrel pointers are relative to it), for callers that read the section
// themselves, like the [vdso] image read from memory. Pointers relative to
// .text or .got cannot be resolved here: an FDE using them is an error.
func ParseEHFrame(data []byte, addr uint64) (*Table, error) {
	return parse(data, true, bases{section: addr, addrSize: 8}, false)
}

// ParseDebugFrame parses raw .debug_frame bytes: absolute addresses, CIE id
// 0xffffffff (all ones in 64-bit DWARF), CIE pointers as section offsets.
func ParseDebugFrame(data []byte) (*Table, error) {
	return parse(data, false, bases{addrSize: 8}, false)
}

// parser holds what reading one section needs. It lives for one call.
type parser struct {
	data  []byte
	eh    bool // .eh_frame: CIE id 0, CIE pointers relative to themselves
	bases bases
	// rangesOnly reads each FDE's range and no instructions: Table.Largest
	// and the counts, no rows.
	rangesOnly bool
	cies       map[int]*cie // by offset; nil until an FDE needs it
	stack      []state      // DW_CFA_remember_state's, reused by every FDE
	rows       []Row        // every FDE's rows, FDE after FDE
	fdes       []span
	t          *Table
}

// span is an FDE: its range, its instructions, and where its rows are in
// parser.rows, the KindNone row at its end included.
type span struct {
	start, end  uint64
	off         int // of the FDE in the section: orders FDEs with equal ranges
	c           *cie
	ins, insEnd int // its instructions, data[ins:insEnd]
	first, n    int
}

// spanOrder is the order of the table: by address, then the longer range
// first (so that a shorter FDE starting there wins), then the section's.
func spanOrder(a, b span) int {
	return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end), cmp.Compare(a.off, b.off))
}

func parse(data []byte, eh bool, b bases, rangesOnly bool) (*Table, error) {
	name := ".debug_frame"
	if eh {
		name = ".eh_frame"
	}
	p := &parser{
		data:       data,
		eh:         eh,
		bases:      b,
		rangesOnly: rangesOnly,
		cies:       make(map[int]*cie),
		t:          &Table{Section: name},
	}
	if !rangesOnly {
		// Real sections need about one row per 5 or 6 bytes, one FDE per 50.
		p.rows = make([]Row, 0, len(data)/4+1)
		p.fdes = make([]span, 0, len(data)/48+1)
	}
	if err := p.walk(); err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	if !rangesOnly {
		if err := p.interpret(); err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		p.build()
	}
	return p.t, nil
}

// walk reads the section's entries in order, twice: first to find where
// the CIEs are, then to read the FDEs' headers (their instructions are
// interpreted after, in address order). A CIE pointer must name one of
// those offsets, so each CIE is read once and bytes are never read as two
// CIEs.
func (p *parser) walk() error {
	for pass := 0; pass < 2; pass++ {
		for off := 0; off < len(p.data); {
			h, r, err := p.header(off)
			if err != nil {
				return fmt.Errorf("read entry at %#x: %w", off, err)
			}
			if h.zero && p.eh {
				// The terminator: the runtime unwinder reads no further.
				break
			}
			switch {
			case h.zero:
			case h.cie && pass == 0:
				p.cies[off] = nil
				p.t.CIEs++
			case !h.cie && pass == 1:
				p.t.FDEs++
				if err := p.fde(off, h, r); err != nil {
					return fmt.Errorf("read FDE at %#x: %w", off, err)
				}
			}
			off = h.end
		}
	}
	return nil
}

// interpret runs every FDE's instructions into rows, in the table's order:
// linkers mostly, not always, write FDEs in address order (libc has a few
// hundred out of place), and rows made in order are put in the table where
// they are, where rows made in the section's order took a second array.
func (p *parser) interpret() error {
	if !slices.IsSortedFunc(p.fdes, spanOrder) {
		slices.SortFunc(p.fdes, spanOrder)
	}
	for i := range p.fdes {
		f := &p.fdes[i]
		f.first = len(p.rows)
		if f.c.signal {
			// The rules are expressions reading the ucontext; one row says it.
			p.rows = append(p.rows, p.rowFor(f.c, &f.c.initial, f.start))
		} else {
			r := reader{data: p.data[:f.insEnd], off: f.ins}
			s := f.c.initial
			fr := frame{start: f.start, end: f.end, loc: f.start}
			p.exec(&r, f.c, &s, &fr)
			if r.err != nil {
				return fmt.Errorf("read FDE at %#x: instructions: %w", f.off, r.err)
			}
			if fr.loc < fr.end {
				p.rows = append(p.rows, p.rowFor(f.c, &s, fr.loc))
			}
		}
		// The FDE's end, unless build finds the next FDE starts there.
		p.rows = append(p.rows, Row{PC: f.end, Kind: KindNone})
		f.n = len(p.rows) - f.first
	}
	return nil
}

// header is the start of a CIE or FDE.
type header struct {
	end   int    // offset just past the entry
	zero  bool   // a zero length (and nothing else)
	cie   bool   // a CIE, else an FDE
	idOff int    // offset of the CIE id or CIE pointer
	id    uint64 // CIE pointer of an FDE, as stored
}

// header reads the length and id of the entry at off, and returns a reader
// limited to the entry, after the id.
func (p *parser) header(off int) (header, reader, error) {
	var h header
	r := reader{data: p.data, off: off}
	length := uint64(r.u32())
	is64 := false
	switch {
	case length == 0xffffffff:
		length, is64 = r.u64(), true
	case length >= 0xfffffff0:
		r.fail("reserved length %#x", length)
	}
	if r.err != nil {
		return h, r, r.err
	}
	if length == 0 {
		return header{end: r.off, zero: true}, r, nil
	}
	if !r.need(length) {
		return h, r, r.err
	}
	h.end = r.off + int(length)
	r.data = p.data[:h.end]
	h.idOff = r.off
	if is64 {
		h.id = r.u64()
	} else {
		h.id = uint64(r.u32())
	}
	if r.err != nil {
		return h, r, r.err
	}
	switch {
	case p.eh:
		h.cie = h.id == 0
	case is64:
		h.cie = h.id == ^uint64(0)
	default:
		h.cie = h.id == 0xffffffff
	}
	return h, r, nil
}

// fde reads the header of the FDE at off and notes it for interpret.
func (p *parser) fde(off int, h header, r reader) error {
	cieOff := h.id
	if p.eh {
		if h.id > uint64(h.idOff) {
			return &FormatError{Off: h.idOff, Msg: fmt.Sprintf("CIE pointer %#x points before the section", h.id)}
		}
		cieOff = uint64(h.idOff) - h.id
	}
	c, err := p.cie(h.idOff, cieOff)
	if err != nil {
		return err
	}
	if c.unknownAug {
		p.t.SkippedFDEs++
		return nil
	}
	start := r.pointer(c.fdeEnc, &c.bases, 0, false, true)
	size := r.pointer(c.fdeEnc&peFormat, &c.bases, 0, false, true)
	if c.hasAugData {
		r.skip(r.uleb())
	}
	if r.err != nil {
		return r.err
	}
	end := start + size
	switch {
	case size == 0:
		p.t.EmptyFDEs++
		return nil
	case end < start:
		p.t.SkippedFDEs++
		return nil
	}
	if size > p.t.Largest.End-p.t.Largest.Start {
		p.t.Largest = Range{Start: start, End: end}
	}
	if !p.rangesOnly {
		p.fdes = append(p.fdes, span{start: start, end: end, off: off, c: c, ins: r.off, insEnd: len(r.data)})
	}
	return nil
}
