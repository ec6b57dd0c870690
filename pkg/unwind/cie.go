package unwind

import "fmt"

// cie is what FDEs need of their common information entry.
type cie struct {
	codeAlign  uint64
	dataAlign  int64
	raReg      uint64
	fdeEnc     byte  // encoding of FDE addresses and DW_CFA_set_loc: 'R', else absptr
	bases      bases // the parser's, with this CIE's address size
	hasAugData bool  // 'z': FDEs carry augmentation data after a length
	signal     bool  // 'S': its FDEs describe signal trampolines
	unknownAug bool  // an augmentation bprof cannot parse: its FDEs are skipped
	initial    state // after the initial instructions: what DW_CFA_restore returns to
}

// cie returns the CIE at off, which the FDE's CIE pointer at ptrOff names,
// reading it the first time.
func (p *parser) cie(ptrOff int, off uint64) (*cie, error) {
	c, ok := p.cies[int(off)]
	if off >= uint64(len(p.data)) || !ok {
		return nil, &FormatError{Off: ptrOff, Msg: fmt.Sprintf("CIE pointer: no CIE at %#x", off)}
	}
	if c != nil {
		return c, nil
	}
	c, err := p.readCIE(int(off))
	if err != nil {
		return nil, fmt.Errorf("read CIE at %#x: %w", off, err)
	}
	p.cies[int(off)] = c
	return c, nil
}

func (p *parser) readCIE(off int) (*cie, error) {
	h, r, err := p.header(off)
	if err != nil {
		return nil, err
	}
	if h.zero || !h.cie {
		return nil, &FormatError{Off: off, Msg: "not a CIE"}
	}
	c := &cie{fdeEnc: peAbsptr, bases: p.bases}
	version := r.u8()
	if r.err == nil && version != 1 && version != 3 && version != 4 {
		return nil, &FormatError{Off: r.off - 1, Msg: fmt.Sprintf("CIE version %d", version)}
	}
	aug := r.cstring()
	if version == 4 {
		addrSize, segSize := r.u8(), r.u8()
		if r.err == nil && (addrSize != 4 && addrSize != 8 || segSize != 0) {
			return nil, &FormatError{Off: r.off - 2, Msg: fmt.Sprintf("address size %d, segment selector size %d", addrSize, segSize)}
		}
		c.bases.addrSize = int(addrSize)
	}
	c.codeAlign = r.uleb()
	c.dataAlign = r.sleb()
	if version == 1 {
		c.raReg = uint64(r.u8())
	} else {
		c.raReg = r.uleb()
	}
	c.readAugmentation(&r, aug)
	if r.err != nil {
		return nil, r.err
	}
	if !c.unknownAug {
		p.exec(&r, c, &c.initial, nil)
		if r.err != nil {
			return nil, fmt.Errorf("initial instructions: %w", r.err)
		}
	}
	return c, nil
}

// readAugmentation reads the augmentation data the string aug announces,
// leaving r after it.
func (c *cie) readAugmentation(r *reader, aug []byte) {
	if len(aug) == 0 || aug[0] != 'z' {
		// Without 'z' there is no data; only the 'S' flag can be understood.
		for _, ch := range aug {
			if ch == 'S' {
				c.signal = true
			} else {
				c.unknownAug = true
			}
		}
		return
	}
	c.hasAugData = true
	n := r.uleb()
	data := reader{data: r.data[:r.off], off: r.off}
	if r.need(n) {
		data.data = r.data[:r.off+int(n)]
		r.off += int(n)
	}
	for _, ch := range aug[1:] {
		switch ch {
		case 'L':
			data.u8() // the LSDA's encoding; FDEs' pointers are skipped by length
		case 'P':
			enc := data.u8()
			data.pointer(enc, &c.bases, 0, false, false)
		case 'R':
			c.fdeEnc = data.u8()
		case 'S':
			c.signal = true
		default:
			// Its data may come before the letters bprof knows.
			c.unknownAug = true
			return
		}
	}
	if data.err != nil && r.err == nil {
		r.err = fmt.Errorf("augmentation %q: %w", aug, data.err)
	}
}
