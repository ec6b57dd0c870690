package process

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// KernelSymbols is a parsed /proc/kallsyms: the kernel's and its modules'
// text symbols, sorted by address. It is immutable and safe for concurrent
// use.
type KernelSymbols struct {
	syms    []kernelSym
	names   string   // every name, back to back: one allocation, not 120,000
	modules []string // module names; kernelSym.module indexes it, 0 is ""
}

// kernelSym is 16 bytes: a kernel has over 100,000 text symbols, and an agent
// keeps them for its whole life.
type kernelSym struct {
	addr   uint64
	off    uint32 // of the name in KernelSymbols.names
	nlen   uint16
	module uint16
}

func (k *KernelSymbols) name(s kernelSym) string { return k.names[s.off : s.off+uint32(s.nlen)] }

// ReadKallsyms reads and parses /proc/kallsyms.
func ReadKallsyms() (*KernelSymbols, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("read kallsyms: %w", err)
	}
	defer f.Close()
	return ParseKallsyms(f)
}

// ParseKallsyms parses the /proc/kallsyms format ("ADDR TYPE NAME
// [\t[MODULE]]"), keeping text symbols (types t, T, w, W). When every
// address is zero the reader lacked the privilege to see them, and the
// error says so.
func ParseKallsyms(r io.Reader) (*KernelSymbols, error) {
	k := &KernelSymbols{modules: []string{""}}
	modIndex := map[string]uint16{"": 0}
	var names []byte
	var global []bool // upper-case type letter, by symbol: only needed to sort
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line, total, nonZero := 0, 0, false
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		addrField, rest := nextField(text)
		typ, rest := nextField(rest)
		name, rest := nextKallsymsName(rest)
		if name == "" || len(typ) != 1 {
			return nil, &ParseError{File: "kallsyms", Line: line, Msg: fmt.Sprintf("want ADDRESS TYPE NAME in %q", text)}
		}
		addr, err := strconv.ParseUint(addrField, 16, 64)
		if err != nil {
			return nil, &ParseError{File: "kallsyms", Line: line, Msg: fmt.Sprintf("bad address %q", addrField)}
		}
		total++
		nonZero = nonZero || addr != 0
		switch typ[0] {
		case 't', 'T', 'w', 'W':
		default:
			continue
		}
		var mod uint16
		if m := strings.TrimSpace(rest); m != "" {
			if !strings.HasPrefix(m, "[") || !strings.HasSuffix(m, "]") || len(m) < 3 {
				return nil, &ParseError{File: "kallsyms", Line: line, Msg: fmt.Sprintf("bad module %q", m)}
			}
			m = m[1 : len(m)-1]
			i, ok := modIndex[m]
			if !ok {
				if len(k.modules) >= 1<<16-1 {
					return nil, &ParseError{File: "kallsyms", Line: line, Msg: "more than 65,535 modules"}
				}
				i = uint16(len(k.modules))
				k.modules = append(k.modules, m)
				modIndex[m] = i
			}
			mod = i
		}
		if len(name) > 1<<16-1 || len(names)+len(name) > 1<<32-1 {
			return nil, &ParseError{File: "kallsyms", Line: line, Msg: "symbol name too long"}
		}
		k.syms = append(k.syms, kernelSym{addr: addr, off: uint32(len(names)), nlen: uint16(len(name)), module: mod})
		global = append(global, typ[0] <= 'Z')
		names = append(names, name...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse kallsyms: %w", err)
	}
	if total == 0 {
		return nil, &ParseError{File: "kallsyms", Msg: "no symbols"}
	}
	if !nonZero {
		return nil, fmt.Errorf("parse kallsyms: every address is zero: run as root, or set the sysctl kernel.kptr_restrict=0")
	}
	// Among aliases at one address keep the global (upper-case) symbol
	// first; Lookup takes the first of equal addresses.
	order := make([]int32, len(k.syms))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int {
		if c := cmp.Compare(k.syms[a].addr, k.syms[b].addr); c != 0 {
			return c
		}
		switch {
		case global[a] && !global[b]:
			return -1
		case global[b] && !global[a]:
			return 1
		}
		return 0
	})
	sorted := make([]kernelSym, len(order))
	for i, j := range order {
		sorted[i] = k.syms[j]
	}
	k.syms = slices.Clip(slices.CompactFunc(sorted, func(a, b kernelSym) bool { return a.addr == b.addr }))
	k.names = string(names)
	return k, nil
}

// nextKallsymsName splits the symbol name from the optional module, which
// follows a tab.
func nextKallsymsName(s string) (name, rest string) {
	s = strings.TrimLeft(s, " ")
	if i := strings.IndexAny(s, "\t "); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// Lookup returns the symbol at or below addr, the distance from it, and
// the module it belongs to ("" for the kernel proper). kallsyms has no
// sizes: an address past the last symbol of a region still resolves to it.
func (k *KernelSymbols) Lookup(addr uint64) (name string, offset uint64, module string, ok bool) {
	i, found := slices.BinarySearchFunc(k.syms, addr, func(s kernelSym, a uint64) int { return cmp.Compare(s.addr, a) })
	if !found {
		i--
	}
	if i < 0 {
		return "", 0, "", false
	}
	s := k.syms[i]
	return k.name(s), addr - s.addr, k.modules[s.module], true
}

// Addr returns the address of the text symbol called name. It scans every
// symbol: for tests and start-up, not for the sample path.
func (k *KernelSymbols) Addr(name string) (uint64, bool) {
	for _, s := range k.syms {
		if k.name(s) == name {
			return s.addr, true
		}
	}
	return 0, false
}

// Len returns the number of text symbols.
func (k *KernelSymbols) Len() int { return len(k.syms) }

// Bounds returns the lowest and highest symbol addresses.
func (k *KernelSymbols) Bounds() (lo, hi uint64) {
	if len(k.syms) == 0 {
		return 0, 0
	}
	return k.syms[0].addr, k.syms[len(k.syms)-1].addr
}
