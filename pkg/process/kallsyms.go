package process

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// KernelSymbols is a parsed /proc/kallsyms: the kernel's and its modules'
// text symbols, sorted by address. It is immutable and safe for concurrent
// use.
type KernelSymbols struct {
	syms    []kernelSym
	names   []string // every name, back to back in chunks of nameChunk bytes: a dozen allocations, not 120,000
	modules []string // module names; kernelSym.module indexes it, 0 is ""
}

// kernelSym is 16 bytes: a kernel has over 100,000 text symbols, and an agent
// keeps them for its whole life.
type kernelSym struct {
	addr   uint64
	off    uint32 // of the name: its chunk in KernelSymbols.names (high bits) and the offset in it
	nlen   uint16
	module uint16
}

func (k *KernelSymbols) name(s kernelSym) string {
	c, o := s.off>>nameChunkBits, s.off&(nameChunk-1)
	return k.names[c][o : o+uint32(s.nlen)]
}

// Names and symbols are collected in fixed-size chunks, never grown: growing
// one buffer by doubling copied it on every step, and at start-up, in a
// fresh process, each new page costs a fault (a VM exit here). ParseKallsyms
// allocated 19.9 MB for the 5 MB it kept; it now allocates ~5.7 MB and keeps 3.5 MB
// (the padding symbols named after their functions, below).
const (
	nameChunkBits = 18
	nameChunk     = 1 << nameChunkBits // bytes; a name (< 64 KiB) never straddles two
	symChunk      = 1 << 14            // symbols
)

// ReadKallsyms reads and parses /proc/kallsyms.
func ReadKallsyms() (*KernelSymbols, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("read kallsyms: %w", err)
	}
	defer f.Close()
	return ParseKallsyms(f)
}

// CheckKallsyms reads the first line of /proc/kallsyms, which is enough to
// tell whether this process may see kernel addresses.
func CheckKallsyms() error {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return fmt.Errorf("read kallsyms: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 256).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("read kallsyms: %w", err)
	}
	return checkKallsymsLine(line)
}

// checkKallsymsLine checks the first line of /proc/kallsyms: here, not by
// ParseKallsyms, whose buffers for 120,000 lines (~0.5 MB) were most of
// what a start of bprof allocated for one line.
func checkKallsymsLine(line string) error {
	fields := strings.Fields(line)
	if len(fields) < 3 {
		return &ParseError{File: "kallsyms", Line: 1, Msg: fmt.Sprintf("want ADDRESS TYPE NAME in %q", line)}
	}
	addr, ok := parseHex([]byte(fields[0]))
	if !ok {
		return &ParseError{File: "kallsyms", Line: 1, Msg: fmt.Sprintf("bad address %q", fields[0])}
	}
	if addr == 0 {
		return errZeroKallsyms
	}
	return nil
}

// errZeroKallsyms says the reader may not see kernel addresses.
var errZeroKallsyms = errors.New("parse kallsyms: every address is zero: run as root, or set the sysctl kernel.kptr_restrict=0")

// ParseKallsyms parses the /proc/kallsyms format ("ADDR TYPE NAME
// [\t[MODULE]]"), keeping text symbols (types t, T, w, W). When every
// address is zero the reader lacked the privilege to see them, and the
// error says so.
//
// It runs at every start of bprof, over ~120,000 lines, and set the peak of
// bprof's RSS: lines are parsed as bytes, with no string per line, and the
// symbols sorted where they are.
func ParseKallsyms(r io.Reader) (*KernelSymbols, error) {
	k := &KernelSymbols{modules: []string{""}}
	modIndex := map[string]uint16{"": 0}
	var names strings.Builder // the chunk being filled
	var symChunks [][]kernelSym
	nsyms := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20) // a read returns as many lines as fit: 16 times fewer reads than 4 KiB
	line, total, nonZero := 0, 0, false
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		addrField, rest := nextByteField(text)
		typ, rest := nextByteField(rest)
		name, rest := nextKallsymsName(rest)
		if len(name) == 0 || len(typ) != 1 {
			return nil, &ParseError{File: "kallsyms", Line: line, Msg: fmt.Sprintf("want ADDRESS TYPE NAME in %q", text)}
		}
		addr, ok := parseHex(addrField)
		if !ok {
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
		if m := bytes.TrimSpace(rest); len(m) != 0 {
			if m[0] != '[' || m[len(m)-1] != ']' || len(m) < 3 {
				return nil, &ParseError{File: "kallsyms", Line: line, Msg: fmt.Sprintf("bad module %q", m)}
			}
			m = m[1 : len(m)-1]
			i, ok := modIndex[string(m)]
			if !ok {
				if len(k.modules) >= maxModules {
					return nil, &ParseError{File: "kallsyms", Line: line, Msg: fmt.Sprintf("more than %d modules", maxModules)}
				}
				i = uint16(len(k.modules))
				k.modules = append(k.modules, string(m))
				modIndex[string(m)] = i
			}
			mod = i
		}
		if len(name) > 1<<16-1 {
			return nil, &ParseError{File: "kallsyms", Line: line, Msg: "symbol name too long"}
		}
		if typ[0] <= 'Z' {
			mod |= globalBit // only until sorted
		}
		if len(symChunks) == 0 || len(symChunks[len(symChunks)-1]) == symChunk {
			symChunks = append(symChunks, make([]kernelSym, 0, symChunk))
		}
		c := &symChunks[len(symChunks)-1]
		nsyms++
		if bytes.HasPrefix(name, pfxPrefix) {
			*c = append(*c, kernelSym{addr: addr, off: pfxOff, module: mod})
			continue
		}
		if names.Cap()-names.Len() < len(name) {
			if names.Cap() > 0 {
				k.names = append(k.names, names.String())
			}
			if len(k.names) >= 1<<(32-nameChunkBits) {
				return nil, &ParseError{File: "kallsyms", Line: line, Msg: "symbol names too long"}
			}
			names = strings.Builder{}
			names.Grow(nameChunk)
		}
		*c = append(*c, kernelSym{addr: addr, off: uint32(len(k.names))<<nameChunkBits | uint32(names.Len()), nlen: uint16(len(name)), module: mod})
		names.Write(name)
	}
	if names.Len() > 0 {
		k.names = append(k.names, names.String())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse kallsyms: %w", err)
	}
	if total == 0 {
		return nil, &ParseError{File: "kallsyms", Msg: "no symbols"}
	}
	if !nonZero {
		return nil, errZeroKallsyms
	}
	k.syms = make([]kernelSym, 0, nsyms)
	for _, c := range symChunks {
		k.syms = append(k.syms, c...)
	}
	// Among aliases at one address keep a named symbol before a padding
	// one, and the global (upper-case) symbol first; Lookup takes the first
	// of equal addresses.
	slices.SortStableFunc(k.syms, func(a, b kernelSym) int {
		if c := cmp.Compare(a.addr, b.addr); c != 0 {
			return c
		}
		if c := cmpBool(a.off == pfxOff, b.off == pfxOff); c != 0 {
			return c
		}
		return cmp.Compare(b.module&globalBit, a.module&globalBit)
	})
	k.syms = slices.CompactFunc(k.syms, func(a, b kernelSym) bool { return a.addr == b.addr })
	for i := range k.syms {
		k.syms[i].module &^= globalBit
	}
	return k, nil
}

// A kernel built with call padding (6.2+, x86) has a __pfx_NAME symbol for
// the 16 bytes before every function NAME: half of all its symbols here
// (57,821 of 122,102), and 1.7 MB of names an agent would keep. They are kept
// nameless (off is pfxOff) and named after the function they pad, the next
// symbol: code there is that function's preamble (FineIBT).
var pfxPrefix = []byte("__pfx_")

const pfxOff = ^uint32(0)

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// globalBit marks, in kernelSym.module while parsing, a global symbol (an
// upper-case type); maxModules keeps module indexes below it.
const (
	globalBit  = 1 << 15
	maxModules = globalBit - 1
)

// nextByteField is nextField on bytes.
func nextByteField(s []byte) (field, rest []byte) {
	s = bytes.TrimLeft(s, " ")
	i := bytes.IndexByte(s, ' ')
	if i < 0 {
		return s, nil
	}
	return s[:i], s[i+1:]
}

// parseHex parses a hexadecimal number of at most 16 digits.
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// nextKallsymsName splits the symbol name from the optional module, which
// follows a tab.
func nextKallsymsName(s []byte) (name, rest []byte) {
	s = bytes.TrimLeft(s, " ")
	for i, c := range s { // bytes.IndexAny was a tenth of the parse
		if c == '\t' || c == ' ' {
			return s[:i], s[i+1:]
		}
	}
	return s, nil
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
	name = ""
	if s.off != pfxOff {
		name = k.name(s)
	} else if i+1 < len(k.syms) && k.syms[i+1].off != pfxOff {
		name = k.name(k.syms[i+1])
	} else {
		return "", 0, "", false
	}
	return name, addr - s.addr, k.modules[s.module], true
}

// Addr returns the address of the text symbol called name. It scans every
// symbol: for tests and start-up, not for the sample path.
func (k *KernelSymbols) Addr(name string) (uint64, bool) {
	for _, s := range k.syms {
		if s.off != pfxOff && k.name(s) == name {
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
