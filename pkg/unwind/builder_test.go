package unwind

import (
	"encoding/binary"
	"strings"
)

// frameBuilder assembles an .eh_frame or .debug_frame section by hand, the
// way a compiler and linker would lay it out.
type frameBuilder struct {
	eh   bool
	is64 bool   // 64-bit DWARF lengths (the 0xffffffff escape)
	addr uint64 // where the section is loaded (.eh_frame pcrel pointers)
	buf  []byte
	enc  map[int]cieSpec
}

// cieSpec describes a CIE; the zero value of a field means the usual value.
type cieSpec struct {
	version   byte   // 1
	aug       string // "zR"
	augData   []byte // [0x1b] for "zR": FDE addresses pcrel sdata4
	codeAlign uint64 // 1
	dataAlign int64  // -8
	ra        uint64 // 16
	insns     []byte // def_cfa rsp+8; rip at cfa-8
	fdeEnc    byte   // how the builder writes FDE addresses; from augData's 'R' byte when zero
	noInsns   bool   // really no initial instructions
	raw       []byte // the whole body after the CIE id, when set
}

func newEH(addr uint64) *frameBuilder {
	return &frameBuilder{eh: true, addr: addr, enc: map[int]cieSpec{}}
}
func newDebug() *frameBuilder { return &frameBuilder{enc: map[int]cieSpec{}} }

// usualCIE are the initial instructions of gcc's x86-64 CIE.
var usualCIE = cat(defCFA(regRSP, 8), offset(regRA, 1))

// entry appends an entry with the given id and body; it returns its offset.
func (b *frameBuilder) entry(id uint64, body []byte) int {
	off := len(b.buf)
	if b.is64 {
		b.buf = binary.LittleEndian.AppendUint32(b.buf, 0xffffffff)
		b.buf = binary.LittleEndian.AppendUint64(b.buf, uint64(8+len(body)))
		b.buf = binary.LittleEndian.AppendUint64(b.buf, id)
	} else {
		b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(4+len(body)))
		b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(id))
	}
	b.buf = append(b.buf, body...)
	return off
}

func (b *frameBuilder) lenSize() int {
	if b.is64 {
		return 12
	}
	return 4
}

func (b *frameBuilder) idSize() int {
	if b.is64 {
		return 8
	}
	return 4
}

func (b *frameBuilder) cie(c cieSpec) int {
	if c.version == 0 {
		c.version = 1
	}
	if c.aug == "" && c.augData == nil && b.eh {
		c.aug, c.augData = "zR", []byte{0x1b}
	}
	if c.aug == "-" {
		c.aug = ""
	}
	if c.codeAlign == 0 {
		c.codeAlign = 1
	}
	if c.dataAlign == 0 {
		c.dataAlign = -8
	}
	if c.ra == 0 {
		c.ra = regRA
	}
	if c.insns == nil && !c.noInsns {
		c.insns = usualCIE
	}
	if c.fdeEnc == 0 && strings.HasPrefix(c.aug, "zR") {
		c.fdeEnc = c.augData[0]
	}
	body := c.raw
	if body == nil {
		body = append([]byte{c.version}, c.aug...)
		body = append(body, 0)
		if c.version == 4 {
			body = append(body, 8, 0)
		}
		body = append(body, uleb(c.codeAlign)...)
		body = append(body, sleb(c.dataAlign)...)
		if c.version == 1 {
			body = append(body, byte(c.ra))
		} else {
			body = append(body, uleb(c.ra)...)
		}
		if len(c.aug) > 0 && c.aug[0] == 'z' {
			body = append(body, uleb(uint64(len(c.augData)))...)
			body = append(body, c.augData...)
		}
		body = append(body, c.insns...)
	}
	id := uint64(0xffffffff)
	switch {
	case b.eh:
		id = 0
	case b.is64:
		id = ^uint64(0)
	}
	off := b.entry(id, body)
	b.enc[off] = c
	return off
}

// fde appends an FDE for [start, start+size) of the CIE at cieOff.
func (b *frameBuilder) fde(cieOff int, start, size uint64, insns ...[]byte) int {
	c := b.enc[cieOff]
	off := len(b.buf)
	id := uint64(cieOff)
	if b.eh {
		id = uint64(off + b.lenSize() - cieOff)
	}
	field := b.addr + uint64(off+b.lenSize()+b.idSize())
	var body []byte
	switch c.fdeEnc {
	case 0x1b: // pcrel sdata4
		body = binary.LittleEndian.AppendUint32(body, uint32(start-field))
		body = binary.LittleEndian.AppendUint32(body, uint32(size))
	case 0x03: // udata4
		body = binary.LittleEndian.AppendUint32(body, uint32(start))
		body = binary.LittleEndian.AppendUint32(body, uint32(size))
	default: // absptr
		body = binary.LittleEndian.AppendUint64(body, start)
		body = binary.LittleEndian.AppendUint64(body, size)
	}
	if len(c.aug) > 0 && c.aug[0] == 'z' {
		body = append(body, 0)
	}
	body = append(body, cat(insns...)...)
	return b.entry(id, body)
}

// bytes returns the section, with .eh_frame's zero terminator.
func (b *frameBuilder) bytes() []byte {
	if b.eh {
		return binary.LittleEndian.AppendUint32(b.buf, 0)
	}
	return b.buf
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func uleb(v uint64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

func sleb(v int64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

// Instructions, named after DW_CFA_*.
func op(b ...byte) []byte           { return b }
func advance(d byte) []byte         { return op(opAdvanceLoc | d) }
func defCFA(reg, off uint64) []byte { return cat(op(opDefCFA), uleb(reg), uleb(off)) }
func defCFAOffset(off uint64) []byte {
	return cat(op(opDefCFAOffset), uleb(off))
}
func defCFARegister(reg uint64) []byte { return cat(op(opDefCFARegister), uleb(reg)) }
func offset(reg byte, factored uint64) []byte {
	return cat(op(opOffset|reg), uleb(factored))
}
func restore(reg byte) []byte { return op(opRestore | reg) }
func defCFAExpr(expr ...byte) []byte {
	return cat(op(opDefCFAExpression), uleb(uint64(len(expr))), expr)
}

// pltExpr is GNU ld's PLT CFA expression with DW_OP_lit<n>.
func pltExpr(n byte) []byte {
	return defCFAExpr(0x77, 8, 0x80, 0, 0x3f, 0x1a, 0x30+n, 0x2a, 0x33, 0x24, 0x22)
}
