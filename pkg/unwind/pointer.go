package unwind

// Pointer encodings of .eh_frame (DW_EH_PE_*): the low nibble is the format,
// bits 4-6 what the value is relative to, bit 7 indirection.
const (
	peAbsptr  = 0x00
	peULEB128 = 0x01
	peUdata2  = 0x02
	peUdata4  = 0x03
	peUdata8  = 0x04
	peSLEB128 = 0x09
	peSdata2  = 0x0a
	peSdata4  = 0x0b
	peSdata8  = 0x0c

	pePCRel   = 0x10
	peTextRel = 0x20
	peDataRel = 0x30
	peFuncRel = 0x40
	peAligned = 0x50

	peIndirect = 0x80
	peOmit     = 0xff

	peFormat = 0x0f
	peApply  = 0x70
)

// bases are the addresses relative pointers are added to. The text and data
// bases are what the GNU tools use on x86-64 (.text and .got); they are only
// known when the whole ELF file is at hand.
type bases struct {
	section  uint64 // address of the section's first byte: pcrel
	text     uint64 // textrel, when hasText
	data     uint64 // datarel, when hasData
	hasText  bool
	hasData  bool
	addrSize int // bytes of an absptr: 8, or 4 from a version 4 CIE
}

// pointer reads a pointer encoded as enc. fn is the start of the current
// FDE, the base of funcrel (hasFn false while reading the FDE's own start).
// When want is false the pointer is only skipped (a personality routine):
// its base need not be known and it may be indirect.
func (r *reader) pointer(enc byte, b *bases, fn uint64, hasFn, want bool) uint64 {
	if enc == peOmit {
		if want {
			r.fail("pointer omitted where one is needed")
		}
		return 0
	}
	if enc&peApply == peAligned {
		// The value is an absptr at the next address-size boundary.
		pad := -(b.section + uint64(r.off)) & uint64(b.addrSize-1)
		r.skip(pad)
		enc = (enc &^ peFormat) | peAbsptr
	}
	field := b.section + uint64(r.off)
	var v uint64
	switch enc & peFormat {
	case peAbsptr:
		if b.addrSize == 4 {
			v = uint64(r.u32())
		} else {
			v = r.u64()
		}
	case peULEB128:
		v = r.uleb()
	case peUdata2:
		v = uint64(r.u16())
	case peUdata4:
		v = uint64(r.u32())
	case peUdata8:
		v = r.u64()
	case peSLEB128:
		v = uint64(r.sleb())
	case peSdata2:
		v = uint64(int64(int16(r.u16())))
	case peSdata4:
		v = uint64(int64(int32(r.u32())))
	case peSdata8:
		v = r.u64()
	default:
		r.fail("unknown pointer format %#x", enc)
		return 0
	}
	switch enc & peApply {
	case 0, peAligned:
	case pePCRel:
		v += field
	case peTextRel:
		if want && !b.hasText {
			r.fail("textrel pointer without a .text address")
		}
		v += b.text
	case peDataRel:
		if want && !b.hasData {
			r.fail("datarel pointer without a .got address")
		}
		v += b.data
	case peFuncRel:
		if want && !hasFn {
			r.fail("funcrel pointer outside an FDE")
		}
		v += fn
	default:
		r.fail("unknown pointer application %#x", enc)
	}
	if want && enc&peIndirect != 0 {
		// The value is where the pointer is stored at run time.
		r.fail("indirect pointer %#x where an address is needed", enc)
	}
	if r.err != nil {
		return 0
	}
	return v
}
