package memory

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bprof/bprof/pkg/process"
)

// The control block of the library (struct bprof_alloc_ctl in
// native/allocsampler/allocsampler.c).
const (
	ctlSymbol  = "bprof_alloc_ctl"
	ctlMagic   = 0x53415042
	ctlABI     = 2
	ctlSize    = 64
	offEnabled = 8
	offMean    = 16
	offSet     = 56
)

// Ctl is a snapshot of a sampler's control block.
type Ctl struct {
	Enabled   bool
	Domains   uint32 // bit per hooked allocator domain: 1<<1 mem, 1<<2 object
	Mean      uint64 // mean bytes between samples
	Sampled   uint64 // allocations sampled since the library was loaded
	Freed     uint64 // frees of tracked blocks
	Live      uint64 // tracked blocks now
	Untracked uint64 // sampled blocks the library could not track (no memory)
}

// Sampler is the allocation sampler loaded in one process.
type Sampler struct {
	PID  int
	Path string // the library as the target's maps name it
	// Start and End bound the library's mappings: the probe and hook frames
	// of every sampled stack are in there.
	Start, End uint64
	first      process.Mapping // the mapping at file offset 0
	ctl        uint64          // address of the control block in the target
	mem        *process.Memory
}

// ErrNotLoaded means the process has no allocation sampler loaded.
var ErrNotLoaded = errors.New("no bprof allocation sampler loaded")

// Find returns the allocation sampler loaded in pid, or ErrNotLoaded.
func Find(pid int) (*Sampler, error) {
	ms, err := process.ReadMaps(pid)
	if err != nil {
		return nil, err
	}
	// Any version of the library with this control block will do; this
	// build's first.
	var paths []string
	for _, m := range ms {
		base := filepath.Base(m.FilePath())
		if m.Anonymous() || !strings.HasPrefix(base, libraryPrefix) || !strings.HasSuffix(base, ".so") {
			continue
		}
		if !contains(paths, m.Path) {
			if base == libraryName {
				paths = append([]string{m.Path}, paths...)
			} else {
				paths = append(paths, m.Path)
			}
		}
	}
	var errs []error
	for _, p := range paths {
		s, err := open(pid, ms, p)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("process %d: %w: %w", pid, ErrNotLoaded, errors.Join(errs...))
	}
	return nil, ErrNotLoaded
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func open(pid int, ms []process.Mapping, path string) (*Sampler, error) {
	s := &Sampler{PID: pid, Path: path, mem: process.NewMemory(pid)}
	found := false
	for _, m := range ms {
		if m.Path != path {
			continue
		}
		if !found || m.Start < s.Start {
			s.Start = m.Start
		}
		if m.End > s.End {
			s.End = m.End
		}
		if m.Offset == 0 && !found {
			s.first = m
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("%s: no mapping at offset 0", path)
	}
	f, err := process.OpenMapped(pid, s.first)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bin, err := process.ParseBinary(f, path)
	if err != nil {
		return nil, err
	}
	vaddr, ok := bin.Lookup(ctlSymbol)
	if !ok {
		return nil, fmt.Errorf("%s: no %s symbol", path, ctlSymbol)
	}
	bias, err := bin.Bias(s.first)
	if err != nil {
		return nil, err
	}
	s.ctl = vaddr + bias
	var hdr [8]byte
	if _, err := s.mem.ReadAt(hdr[:], int64(s.ctl)); err != nil {
		return nil, err
	}
	if magic, abi := binary.LittleEndian.Uint32(hdr[:]), binary.LittleEndian.Uint32(hdr[4:]); magic != ctlMagic || abi != ctlABI {
		return nil, fmt.Errorf("%s: control block magic %#x ABI %d, want %#x ABI %d (another bprof version's sampler?)",
			path, magic, abi, ctlMagic, ctlABI)
	}
	return s, nil
}

// ProbePath is a path to the loaded library that this process can open and
// the kernel resolves to the very file mapped (uprobes attach to an inode):
// /proc/PID/map_files/..., which also works after the file was replaced or
// deleted, else the path through the target's root.
func (s *Sampler) ProbePath() string {
	mf := fmt.Sprintf("/proc/%d/map_files/%x-%x", s.PID, s.first.Start, s.first.End)
	if _, err := os.Stat(mf); err == nil {
		return mf
	}
	return fmt.Sprintf("/proc/%d/root%s", s.PID, s.first.FilePath())
}

// Read reads the control block.
func (s *Sampler) Read() (Ctl, error) {
	var b [ctlSize]byte
	if _, err := s.mem.ReadAt(b[:], int64(s.ctl)); err != nil {
		return Ctl{}, fmt.Errorf("read allocation sampler of %d: %w", s.PID, err)
	}
	return decodeCtl(b[:]), nil
}

func decodeCtl(b []byte) Ctl {
	le := binary.LittleEndian
	return Ctl{
		Enabled:   le.Uint32(b[8:]) != 0,
		Domains:   le.Uint32(b[12:]),
		Mean:      le.Uint64(b[16:]),
		Sampled:   le.Uint64(b[24:]),
		Freed:     le.Uint64(b[32:]),
		Live:      le.Uint64(b[40:]),
		Untracked: le.Uint64(b[48:]),
	}
}

// LiveBlocks returns the addresses of the sampled blocks the library still
// tracks: those sampled (with the tracked flag) and not freed since. The
// target changes its table while this copies it, without a lock: entries
// never move (a removed one leaves a tombstone) and a rebuilt table is
// published before the old one is unmapped, so a copy holds every block
// live throughout it (and perhaps some freed meanwhile). It is taken again
// only if the table was replaced under it.
func (s *Sampler) LiveBlocks() (map[uint64]struct{}, error) {
	var table []byte
	var word [8]byte
	for try := 0; try < 10; try++ {
		if _, err := s.mem.ReadAt(word[:], int64(s.ctl+offSet)); err != nil {
			return nil, fmt.Errorf("read live blocks of %d: %w", s.PID, err)
		}
		set := binary.LittleEndian.Uint64(word[:])
		if set == 0 {
			return map[uint64]struct{}{}, nil
		}
		addr, slots, err := decodeSet(set)
		if err != nil {
			return nil, fmt.Errorf("read live blocks of %d: %w", s.PID, err)
		}
		table = growTo(table, int(slots)*8)
		_, rerr := s.mem.ReadAt(table, int64(addr))
		if _, err := s.mem.ReadAt(word[:], int64(s.ctl+offSet)); err != nil {
			return nil, fmt.Errorf("read live blocks of %d: %w", s.PID, err)
		}
		if binary.LittleEndian.Uint64(word[:]) != set {
			continue // rebuilt meanwhile; the old table may be gone
		}
		if rerr != nil {
			return nil, fmt.Errorf("read live blocks of %d at %#x: %w", s.PID, addr, rerr)
		}
		return liveAddrs(table), nil
	}
	return nil, fmt.Errorf("read live blocks of %d: the table was rebuilt under 10 reads", s.PID)
}

// decodeSet splits the control block's set word: a page-aligned address
// ORed with log2 of the slots.
func decodeSet(set uint64) (addr, slots uint64, err error) {
	addr, shift := set&^0xfff, set&0xfff
	if addr == 0 || shift > maxSetShift || shift < 1 {
		return 0, 0, fmt.Errorf("implausible live set %#x", set)
	}
	return addr, 1 << shift, nil
}

// maxSetShift bounds the table LiveBlocks copies: 2^24 slots (128 MiB) hold
// 4M live sampled blocks, 2 TiB of heap at the default rate.
const maxSetShift = 24

func growTo(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// liveAddrs decodes a copy of the library's table: slots hold an address,
// 0 (empty) or 1 (removed).
func liveAddrs(table []byte) map[uint64]struct{} {
	live := map[uint64]struct{}{}
	for i := 0; i+8 <= len(table); i += 8 {
		if a := binary.LittleEndian.Uint64(table[i:]); a > 1 {
			live[a] = struct{}{}
		}
	}
	return live
}

// Enable starts sampling, one allocation every mean bytes on average.
func (s *Sampler) Enable(mean uint64) error {
	if mean == 0 {
		mean = DefaultSampleBytes
	}
	if _, err := s.mem.WriteAt(binary.LittleEndian.AppendUint64(nil, mean), int64(s.ctl+offMean)); err != nil {
		return fmt.Errorf("enable allocation sampler of %d: %w", s.PID, err)
	}
	if _, err := s.mem.WriteAt(binary.LittleEndian.AppendUint32(nil, 1), int64(s.ctl+offEnabled)); err != nil {
		return fmt.Errorf("enable allocation sampler of %d: %w", s.PID, err)
	}
	return nil
}

// Disable stops sampling: the target's allocations pass through the hooks
// untouched (frees of blocks sampled before still leave the live set).
func (s *Sampler) Disable() error {
	if _, err := s.mem.WriteAt(make([]byte, 4), int64(s.ctl+offEnabled)); err != nil {
		return fmt.Errorf("disable allocation sampler of %d: %w", s.PID, err)
	}
	return nil
}

// Close releases the memory reader.
func (s *Sampler) Close() error { return s.mem.Close() }
