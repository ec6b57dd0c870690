package process

import (
	"cmp"
	"debug/elf"
	"encoding/binary"
	"slices"
	"strings"
)

// funcSym is a function in a Binary: [start, start+size).
type funcSym struct {
	name  string
	start uint64
	size  uint64
	rank  int // lower wins among symbols at the same address
}

// namedSym is a function or data object by name, for Lookup.
type namedSym struct {
	name  string
	value uint64
}

// loadSymbols merges .symtab and .dynsym. Functions (STT_FUNC and
// STT_GNU_IFUNC) are kept sorted for address lookups; data objects
// (STT_OBJECT) only for Lookup by name. Errors reading either table are
// ignored: a stripped file simply has fewer symbols.
func (b *Binary) loadSymbols(f *elf.File) {
	funcs := b.readSymtab(f, elf.SHT_SYMTAB, false, nil)
	funcs = b.readSymtab(f, elf.SHT_DYNSYM, true, funcs)
	b.funcs, b.ends = funcs, sectionEnds(f)
	b.named = slices.Clip(b.named)
}

// readSymtab appends the functions of f's first section of type typ to
// funcs, and its functions and objects to b.named. The table is decoded in
// place and every name is a substring of one copy of its string table:
// debug/elf's Symbols made a string and a struct per symbol, tens of
// thousands for libpython, and that was most of what parsing a file cost.
func (b *Binary) readSymtab(f *elf.File, typ elf.SectionType, dynamic bool, funcs []funcSym) []funcSym {
	var tab *elf.Section
	for _, s := range f.Sections {
		if s.Type == typ {
			tab = s
			break
		}
	}
	if tab == nil || int(tab.Link) >= len(f.Sections) {
		return funcs
	}
	data, err := tab.Data()
	if err != nil {
		return funcs
	}
	strs, err := f.Sections[tab.Link].Data()
	if err != nil {
		return funcs
	}
	strtab := string(strs)
	syms := symtab{data: data, class: f.Class, bo: f.ByteOrder}
	// Count first: grown by append, the slices cost more than the decoding.
	nf, nn := 0, 0
	syms.each(func(_ uint32, info uint8, value, _ uint64) {
		switch elf.ST_TYPE(info) {
		case elf.STT_FUNC, elf.STT_GNU_IFUNC:
			if value != 0 {
				nf++
				nn++
			}
		case elf.STT_OBJECT:
			nn++
		}
	})
	funcs = slices.Grow(funcs, nf)
	b.named = slices.Grow(b.named, nn)
	syms.each(func(nameOff uint32, info uint8, value, size uint64) {
		switch elf.ST_TYPE(info) {
		case elf.STT_FUNC, elf.STT_GNU_IFUNC:
			if value == 0 {
				return
			}
			if name := cString(strtab, nameOff); name != "" {
				funcs = append(funcs, funcSym{name: name, start: value, size: size, rank: symRank(info, dynamic)})
				b.named = append(b.named, namedSym{name, value})
			}
		case elf.STT_OBJECT:
			if name := cString(strtab, nameOff); name != "" {
				b.named = append(b.named, namedSym{name, value})
			}
		}
	})
	return funcs
}

// symtab is a raw ELF symbol table.
type symtab struct {
	data  []byte
	class elf.Class
	bo    binary.ByteOrder
}

// each calls fn with every defined symbol of the table, the reserved first
// entry left out.
func (t symtab) each(fn func(nameOff uint32, info uint8, value, size uint64)) {
	entry := 24 // Elf64_Sym
	if t.class == elf.ELFCLASS32 {
		entry = 16
	}
	bo := t.bo
	for off := entry; off+entry <= len(t.data); off += entry {
		e := t.data[off : off+entry]
		var nameOff uint32
		var info uint8
		var shndx uint16
		var value, size uint64
		if entry == 24 {
			nameOff, info, shndx = bo.Uint32(e), e[4], bo.Uint16(e[6:])
			value, size = bo.Uint64(e[8:]), bo.Uint64(e[16:])
		} else {
			nameOff, value, size = bo.Uint32(e), uint64(bo.Uint32(e[4:])), uint64(bo.Uint32(e[8:]))
			info, shndx = e[12], bo.Uint16(e[14:])
		}
		if elf.SectionIndex(shndx) != elf.SHN_UNDEF {
			fn(nameOff, info, value, size)
		}
	}
}

// cString returns the NUL-terminated string at off in strtab, "" if off is
// out of range.
func cString(strtab string, off uint32) string {
	if int64(off) >= int64(len(strtab)) {
		return ""
	}
	s := strtab[off:]
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}

// symRank orders aliases at one address: global before weak before local,
// and .symtab before .dynsym.
func symRank(info uint8, dynamic bool) int {
	r := 0
	switch elf.ST_BIND(info) {
	case elf.STB_GLOBAL:
	case elf.STB_WEAK:
		r = 2
	default:
		r = 4
	}
	if dynamic {
		r++
	}
	return r
}

// sectionEnds returns the end addresses of the allocated sections, sorted,
// to bound the last zero-sized symbol of a section.
func sectionEnds(f *elf.File) []uint64 {
	var ends []uint64
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Size > 0 {
			ends = append(ends, s.Addr+s.Size)
		}
	}
	slices.Sort(ends)
	return ends
}

// dedupeFuncs sorts funcs by address, keeps one symbol per address (the
// best-ranked; the largest size among the aliases), and gives zero-sized
// symbols the room up to the next symbol or the end of their section.
func dedupeFuncs(funcs []funcSym, ends []uint64) []funcSym {
	slices.SortFunc(funcs, func(a, b funcSym) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.rank, b.rank), cmp.Compare(a.name, b.name))
	})
	out := funcs[:0]
	for _, s := range funcs {
		if n := len(out); n > 0 && out[n-1].start == s.start {
			out[n-1].size = max(out[n-1].size, s.size)
			continue
		}
		out = append(out, s)
	}
	for i := range out {
		if out[i].size != 0 {
			continue
		}
		limit := ^uint64(0)
		if i+1 < len(out) {
			limit = out[i+1].start
		}
		if j, _ := slices.BinarySearch(ends, out[i].start+1); j < len(ends) {
			limit = min(limit, ends[j])
		}
		if limit == ^uint64(0) {
			out[i].size = 1 // nothing bounds it: name only its own address
		} else {
			out[i].size = limit - out[i].start
		}
	}
	return slices.Clip(out)
}

// Symbol returns the function whose range holds vaddr, an ELF virtual
// address (a runtime address minus Bias). It costs a binary search.
func (b *Binary) Symbol(vaddr uint64) (name string, start uint64, ok bool) {
	b.sortFuncs.Do(b.dedupe)
	i, found := slices.BinarySearchFunc(b.funcs, vaddr, func(s funcSym, a uint64) int { return cmp.Compare(s.start, a) })
	if !found {
		i--
	}
	if i < 0 {
		return "", 0, false
	}
	s := b.funcs[i]
	if vaddr-s.start >= s.size {
		return "", 0, false
	}
	return s.name, s.start, true
}

// Lookup returns the ELF virtual address of the function or data object
// called name (such as _PyRuntime or Py_Version), the first in .symtab,
// then .dynsym. It scans every symbol: callers look up a few names a file,
// and a map of every name cost more to build than all their scans.
func (b *Binary) Lookup(name string) (uint64, bool) {
	for _, s := range b.named {
		if s.name == name {
			return s.value, true
		}
	}
	return 0, false
}

// NumFuncs returns how many distinct function addresses the Binary knows.
func (b *Binary) NumFuncs() int {
	b.sortFuncs.Do(b.dedupe)
	return len(b.funcs)
}

// dedupe sorts b.funcs and keeps one symbol per address (dedupeFuncs).
func (b *Binary) dedupe() {
	b.funcs, b.ends = dedupeFuncs(b.funcs, b.ends), nil
}
