package symbolize

import (
	"bytes"
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bprof/bprof/pkg/process"
)

// minRefresh is the shortest time between two rereads of a process's maps
// caused by addresses outside every known mapping. It bounds the cost of a
// process whose stacks keep holding garbage addresses; a library dlopened
// within it of the last reread shows as [unknown] until then.
const minRefresh = 100 * time.Millisecond

// Native names native frames: addresses in the files a process maps.
// Parsed files come from a process.Cache shared by every process; what
// Native keeps per process (its mappings) lives until Forget.
//
// A Native is safe for concurrent use.
type Native struct {
	cache   *process.Cache
	unknown *Module // the one Module of addresses in no mapping

	mu      sync.Mutex
	procs   map[int]*procMaps
	changes atomic.Uint64 // mapping sets that changed, and processes forgotten (Changes)

	vdsoOnce sync.Once
	vdso     *process.Binary // the kernel's vDSO: the same image in every process
}

// procMaps is what Native knows of one process.
type procMaps struct {
	mu          sync.Mutex
	loaded      bool
	lastRefresh time.Time
	maps        []*mapped // sorted by Start
}

// mapped is one mapping of a process, its Module and, once an address in
// it was asked for, its parsed file.
type mapped struct {
	m        process.Mapping
	mod      *Module
	resolved bool            // bin and bias were looked for
	bin      *process.Binary // nil when the file could not be read
	bias     uint64
	biasOK   bool
}

// NewNative returns a Native that parses files through cache.
func NewNative(cache *process.Cache) *Native {
	return &Native{
		cache:   cache,
		unknown: &Module{Path: "[unknown]"},
		procs:   make(map[int]*procMaps),
	}
}

// Symbolize appends one Frame per address of process pid to dst, in the
// order given (leaf first), and returns dst. Every address but the first is
// taken as a return address and looked up at addr-1. It reads
// /proc/PID/maps the first time it sees pid, and again (at most once per
// call and per minRefresh) when an address falls outside every known
// mapping, which a newly loaded library does.
func (n *Native) Symbolize(pid int, addrs []uint64, dst []Frame) []Frame {
	return n.SymbolizeFrom(pid, addrs, 0, dst)
}

// SymbolizeFrom is Symbolize for the part of a stack that starts at its
// first-th frame: only the stack's first frame is where the thread was, the
// others are return addresses.
func (n *Native) SymbolizeFrom(pid int, addrs []uint64, first int, dst []Frame) []Frame {
	pm := n.proc(pid)
	pm.mu.Lock()
	defer pm.mu.Unlock()
	refreshed := pm.ensureLoaded(pid)
	for i, addr := range addrs {
		look := lookupAddr(first+i, addr)
		mp := pm.find(look)
		if mp == nil && !refreshed && time.Since(pm.lastRefresh) >= minRefresh {
			n.refresh(pm, pid)
			refreshed = true
			mp = pm.find(look)
		}
		dst = append(dst, n.frame(pid, mp, addr, look))
	}
	return dst
}

// Mapping returns the mapping of process pid that holds addr and its
// parsed file, which is nil when the file could not be read or is not ELF.
// ok is false when no mapping holds addr.
func (n *Native) Mapping(pid int, addr uint64) (m process.Mapping, bin *process.Binary, ok bool) {
	pm := n.proc(pid)
	pm.mu.Lock()
	defer pm.mu.Unlock()
	refreshed := pm.ensureLoaded(pid)
	mp := pm.find(addr)
	if mp == nil && !refreshed && time.Since(pm.lastRefresh) >= minRefresh {
		n.refresh(pm, pid)
		mp = pm.find(addr)
	}
	if mp == nil {
		return process.Mapping{}, nil, false
	}
	n.resolve(pid, mp)
	return mp.m, mp.bin, true
}

// Forget drops what Native keeps of process pid; call it when the process
// exits (a new process with the same PID would otherwise be looked up
// through stale mappings until they miss).
func (n *Native) Forget(pid int) {
	n.mu.Lock()
	delete(n.procs, pid)
	n.mu.Unlock()
	n.changes.Add(1)
}

// Changes counts the times a process's mappings were found changed, and the
// processes forgotten: names a caller kept for addresses hold while it does
// not change.
func (n *Native) Changes() uint64 { return n.changes.Load() }

func (n *Native) proc(pid int) *procMaps {
	n.mu.Lock()
	defer n.mu.Unlock()
	pm, ok := n.procs[pid]
	if !ok {
		pm = &procMaps{}
		n.procs[pid] = pm
	}
	return pm
}

// lookupAddr is the address to look up for the i-th frame: return
// addresses point after their call, which may be past the caller's end.
func lookupAddr(i int, addr uint64) uint64 {
	if i > 0 && addr > 0 {
		return addr - 1
	}
	return addr
}

// ensureLoaded reads the maps the first time, and reports whether it did.
func (pm *procMaps) ensureLoaded(pid int) bool {
	if pm.loaded {
		return false
	}
	pm.refresh(pid)
	return true
}

// refresh is procMaps.refresh, counting a change of the mapping set.
func (n *Native) refresh(pm *procMaps, pid int) {
	if pm.refresh(pid) {
		n.changes.Add(1)
	}
}

// refresh rereads the maps, and reports whether a mapping came or went.
// Mappings that did not change keep their state and Module. A process that
// is gone keeps what was known of it.
func (pm *procMaps) refresh(pid int) (changed bool) {
	pm.loaded = true
	pm.lastRefresh = time.Now()
	ms, err := process.ReadMaps(pid)
	if err != nil {
		return false
	}
	old := make(map[process.Mapping]*mapped, len(pm.maps))
	for _, mp := range pm.maps {
		old[mp.m] = mp
	}
	changed = len(ms) != len(pm.maps)
	maps := make([]*mapped, 0, len(ms))
	for _, m := range ms {
		if mp, ok := old[m]; ok {
			maps = append(maps, mp)
			continue
		}
		changed = true
		maps = append(maps, &mapped{m: m, mod: &Module{
			Path: modulePath(m), Start: m.Start, Limit: m.End, Offset: m.Offset,
		}})
	}
	slices.SortFunc(maps, func(a, b *mapped) int { return cmp.Compare(a.m.Start, b.m.Start) })
	pm.maps = maps
	return changed
}

func modulePath(m process.Mapping) string {
	if m.Path == "" {
		return "[anon]"
	}
	return m.Path
}

// find returns the mapping holding addr, or nil.
func (pm *procMaps) find(addr uint64) *mapped {
	i, found := slices.BinarySearchFunc(pm.maps, addr, func(mp *mapped, a uint64) int { return cmp.Compare(mp.m.Start, a) })
	if !found {
		i--
	}
	if i < 0 || !pm.maps[i].m.Contains(addr) {
		return nil
	}
	return pm.maps[i]
}

// resolve looks up the parsed file of mp once.
func (n *Native) resolve(pid int, mp *mapped) {
	if mp.resolved {
		return
	}
	mp.resolved = true
	if mp.m.Path == "[vdso]" {
		mp.bin = n.vdsoBinary()
	}
	if mp.m.Anonymous() && mp.bin == nil {
		return
	}
	if mp.bin == nil {
		bin, err := n.cache.Binary(pid, mp.m)
		if err != nil {
			return
		}
		mp.bin = bin
	}
	bin := mp.bin
	mp.mod.BuildID = bin.BuildID
	if bias, err := bin.Bias(mp.m); err == nil {
		mp.bias, mp.biasOK = bias, true
	}
}

func (n *Native) frame(pid int, mp *mapped, addr, look uint64) Frame {
	if mp == nil {
		return Frame{Kind: KindNative, Name: fmt.Sprintf("[unknown]+%#x", addr), Module: n.unknown, Addr: addr}
	}
	n.resolve(pid, mp)
	f := Frame{Kind: KindNative, Module: mp.mod, Addr: addr}
	if mp.bin != nil && mp.biasOK {
		if name, _, ok := mp.bin.Symbol(look - mp.bias); ok {
			f.Name = name
			return f
		}
	}
	f.Name = fmt.Sprintf("%s+%#x", filepath.Base(mp.m.FilePath()), addr-mp.m.Start+mp.m.Offset)
	if mp.m.Path == "" {
		f.Name = fmt.Sprintf("[anon]+%#x", addr-mp.m.Start)
	}
	return f
}

// vdsoBinary parses, once, bprof's own copy of the vDSO, which names the
// frames of every process's [vdso] mapping (clock_gettime and friends). Nil
// when it cannot be read.
func (n *Native) vdsoBinary() *process.Binary {
	n.vdsoOnce.Do(func() {
		img, err := process.ReadVDSO()
		if err != nil {
			return
		}
		n.vdso, _ = process.ParseBinary(bytes.NewReader(img), "[vdso]")
	})
	return n.vdso
}
