package process

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Mapping is one line of /proc/PID/maps: a range of the target's address
// space and what backs it.
type Mapping struct {
	Start, End   uint64 // [Start, End) in the target's address space
	Offset       uint64 // file offset mapped at Start
	Perms        string // "r-xp" and the like
	Major, Minor uint32 // device of the mapped file
	Inode        uint64 // inode of the mapped file, 0 for anonymous memory
	// Path is the path as the target's maps file shows it, relative to the
	// reader's root, including a trailing " (deleted)" when the file was
	// removed. Empty for anonymous memory; pseudo paths such as "[heap]",
	// "[stack]", "[vdso]" and "[anon:name]" are kept as they are.
	Path string
}

const deletedSuffix = " (deleted)"

// Executable reports whether the mapping may be executed.
func (m Mapping) Executable() bool { return len(m.Perms) > 2 && m.Perms[2] == 'x' }

// Anonymous reports whether no file backs the mapping: no inode, no path,
// or a pseudo path such as [vdso], [heap], [stack] or [anon:...].
func (m Mapping) Anonymous() bool {
	return m.Inode == 0 || m.Path == "" || strings.HasPrefix(m.Path, "[") ||
		strings.HasPrefix(m.Path, "anon_inode:")
}

// Deleted reports whether the mapped file was removed after it was mapped.
func (m Mapping) Deleted() bool { return strings.HasSuffix(m.Path, deletedSuffix) }

// FilePath is Path without a trailing " (deleted)".
func (m Mapping) FilePath() string { return strings.TrimSuffix(m.Path, deletedSuffix) }

// Contains reports whether addr lies in [Start, End).
func (m Mapping) Contains(addr uint64) bool { return addr >= m.Start && addr < m.End }

// ReadMaps reads and parses /proc/PID/maps.
func ReadMaps(pid int) ([]Mapping, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, fmt.Errorf("read maps: %w", err)
	}
	defer f.Close()
	ms, err := ParseMaps(f)
	if err != nil {
		return nil, fmt.Errorf("read maps of pid %d: %w", pid, err)
	}
	return ms, nil
}

// ParseMaps parses the /proc/PID/maps format, one Mapping per line, in the
// order given (the kernel lists them by ascending address).
func ParseMaps(r io.Reader) ([]Mapping, error) {
	var ms []Mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		m, err := parseMapsLine(text)
		if err != nil {
			return nil, &ParseError{File: "maps", Line: line, Msg: err.Error()}
		}
		ms = append(ms, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse maps: %w", err)
	}
	return ms, nil
}

// nextField splits s at the first run of spaces: the field before it, and
// the rest after it.
func nextField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " ")
	i := strings.IndexByte(s, ' ')
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

func parseMapsLine(s string) (Mapping, error) {
	var m Mapping
	addrs, rest := nextField(s)
	perms, rest := nextField(rest)
	off, rest := nextField(rest)
	dev, rest := nextField(rest)
	ino, rest := nextField(rest)
	if ino == "" {
		return m, fmt.Errorf("want at least 5 fields in %q", s)
	}
	start, end, ok := strings.Cut(addrs, "-")
	if !ok {
		return m, fmt.Errorf("bad address range %q", addrs)
	}
	var err error
	if m.Start, err = strconv.ParseUint(start, 16, 64); err != nil {
		return m, fmt.Errorf("bad start address %q", start)
	}
	if m.End, err = strconv.ParseUint(end, 16, 64); err != nil {
		return m, fmt.Errorf("bad end address %q", end)
	}
	if m.End < m.Start {
		return m, fmt.Errorf("end %#x before start %#x", m.End, m.Start)
	}
	if len(perms) != 4 {
		return m, fmt.Errorf("bad permissions %q", perms)
	}
	m.Perms = perms
	if m.Offset, err = strconv.ParseUint(off, 16, 64); err != nil {
		return m, fmt.Errorf("bad offset %q", off)
	}
	maj, min, ok := strings.Cut(dev, ":")
	if !ok {
		return m, fmt.Errorf("bad device %q", dev)
	}
	major, err := strconv.ParseUint(maj, 16, 32)
	if err != nil {
		return m, fmt.Errorf("bad device major %q", maj)
	}
	minor, err := strconv.ParseUint(min, 16, 32)
	if err != nil {
		return m, fmt.Errorf("bad device minor %q", min)
	}
	m.Major, m.Minor = uint32(major), uint32(minor)
	if m.Inode, err = strconv.ParseUint(ino, 10, 64); err != nil {
		return m, fmt.Errorf("bad inode %q", ino)
	}
	// The path is the rest of the line after the padding, and may itself
	// contain spaces.
	m.Path = strings.TrimLeft(rest, " ")
	return m, nil
}
