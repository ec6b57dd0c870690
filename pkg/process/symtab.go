package process

import (
	"cmp"
	"debug/elf"
	"slices"
)

// funcSym is a function in a Binary: [start, start+size).
type funcSym struct {
	name  string
	start uint64
	size  uint64
	rank  int // lower wins among symbols at the same address
}

// loadSymbols merges .symtab and .dynsym. Functions (STT_FUNC and
// STT_GNU_IFUNC) are kept sorted for address lookups; data objects
// (STT_OBJECT) only for Lookup by name. Errors reading either table are
// ignored: a stripped file simply has fewer symbols.
func (b *Binary) loadSymbols(f *elf.File) {
	b.byName = make(map[string]uint64)
	var funcs []funcSym
	add := func(syms []elf.Symbol, dynamic bool) {
		for _, s := range syms {
			if s.Section == elf.SHN_UNDEF || s.Name == "" {
				continue
			}
			typ := elf.ST_TYPE(s.Info)
			switch typ {
			case elf.STT_FUNC, elf.STT_GNU_IFUNC:
				if s.Value == 0 {
					continue
				}
				funcs = append(funcs, funcSym{name: s.Name, start: s.Value, size: s.Size, rank: symRank(s, dynamic)})
			case elf.STT_OBJECT:
			default:
				continue
			}
			if _, ok := b.byName[s.Name]; !ok {
				b.byName[s.Name] = s.Value
			}
		}
	}
	if syms, err := f.Symbols(); err == nil {
		add(syms, false)
	}
	if syms, err := f.DynamicSymbols(); err == nil {
		add(syms, true)
	}
	b.funcs = dedupeFuncs(funcs, sectionEnds(f))
}

// symRank orders aliases at one address: global before weak before local,
// and .symtab before .dynsym.
func symRank(s elf.Symbol, dynamic bool) int {
	r := 0
	switch elf.ST_BIND(s.Info) {
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
// called name (such as _PyRuntime or Py_Version).
func (b *Binary) Lookup(name string) (uint64, bool) {
	v, ok := b.byName[name]
	return v, ok
}

// NumFuncs returns how many distinct function addresses the Binary knows.
func (b *Binary) NumFuncs() int { return len(b.funcs) }
