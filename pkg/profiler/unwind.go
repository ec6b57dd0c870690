package profiler

import (
	"bytes"
	"debug/elf"
	"fmt"
	"sync"

	"github.com/bprof/bprof/pkg/process"
	"github.com/bprof/bprof/pkg/sampler"
	"github.com/bprof/bprof/pkg/unwind"
)

// unwinder keeps the kernel's unwind tables for the targets: one table per
// file, built once from its .eh_frame and shared by every process that maps
// it, and per process the list of its executable mappings. Tables of files
// no target maps any more stay loaded until the space is needed, so a
// short-lived process of an interpreter already seen costs no rebuild.
type unwinder struct {
	smp   *sampler.Sampler
	cache *process.Cache
	warn  func(string)

	mu    sync.Mutex
	files map[process.FileID]*fileTable
	procs map[int][]process.FileID // the files each target's mappings use
	stats UnwindStats

	refresh chan int // targets whose mappings changed (dlopen), handled off the read loop
	// onRefresh runs after a target's mappings were read again: a process
	// that exec'd (a shell script becoming python) is new code to attach to.
	onRefresh func(pid int)

	vdsoOnce  sync.Once
	vdso      *fileTable // the kernel's vDSO, the same image in every process
	vdsoVaddr uint64     // its ELF address at the start of its mapping
}

// fileTable is one file's table in the kernel, or why it has none.
type fileTable struct {
	table sampler.UnwindTable
	base  uint64 // ELF address of row PC 0
	refs  int    // targets mapping the file
	err   error  // the file has no usable table: frame pointers for it
}

// UnwindStats say how native unwinding is set up.
type UnwindStats struct {
	Files      int // files with a table loaded
	Rows       int // rows loaded, over all files
	Failed     int // files with no usable table (walked by frame pointers)
	Downgraded int // rows whose rule did not fit the kernel's row (walked by frame pointers)
}

func newUnwinder(smp *sampler.Sampler, cache *process.Cache, warn func(string)) *unwinder {
	return &unwinder{
		smp: smp, cache: cache, warn: warn,
		files:   map[process.FileID]*fileTable{},
		procs:   map[int][]process.FileID{},
		refresh: make(chan int, 64),
	}
}

// load reads pid's mappings, builds the tables of files not seen before
// and tells the sampler. Until it returns, pid's stacks are walked by frame
// pointers.
func (u *unwinder) load(pid int) error {
	ms, err := process.ReadMaps(pid)
	if err != nil {
		return fmt.Errorf("unwind tables of %d: %w", pid, err)
	}
	var out []sampler.UnwindMapping
	var ids []process.FileID
	// A file not seen before is walked by frame pointers (and counted) while
	// its table is built, rather than not at all: say so first.
	if u.hasNew(pid, ms) {
		u.setBare(pid, ms)
	}
	for _, m := range ms {
		if !m.Executable() {
			continue
		}
		um := sampler.UnwindMapping{Start: m.Start, End: m.End}
		if m.Path == "[vdso]" {
			if ft, vaddr := u.vdsoTable(); ft != nil && ft.err == nil {
				um.Table = ft.table
				um.Bias = m.Start - vaddr + ft.base
			}
			out = append(out, um)
			continue
		}
		if m.Anonymous() {
			out = append(out, um) // JIT code: frame pointers
			continue
		}
		bin, err := u.cache.Binary(pid, m)
		if err != nil {
			out = append(out, um)
			continue
		}
		bias, err := bin.Bias(m)
		if err != nil {
			out = append(out, um)
			continue
		}
		ft := u.table(pid, m, bin)
		ids = append(ids, bin.ID)
		if ft.err == nil {
			um.Table = ft.table
			um.Bias = bias + ft.base
		}
		out = append(out, um)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.release(u.procs[pid]) // table took a hold on each of ids
	u.procs[pid] = ids
	if _, err := u.smp.SetUnwindMappings(pid, out); err != nil {
		return err
	}
	return nil
}

// table returns the file's table, building and loading it the first time,
// and takes a hold on it (see release).
func (u *unwinder) table(pid int, m process.Mapping, bin *process.Binary) *fileTable {
	u.mu.Lock()
	ft, ok := u.files[bin.ID]
	if ok {
		ft.refs++
	}
	u.mu.Unlock()
	if ok {
		return ft
	}
	ft = &fileTable{}
	rows, base, downgraded, err := buildTable(pid, m)
	if err == nil {
		ft.base = base
		ft.table, err = u.smp.LoadUnwindTable(rows)
		if err != nil && u.evictUnused() {
			ft.table, err = u.smp.LoadUnwindTable(rows)
		}
	}
	ft.err = err
	u.mu.Lock()
	defer u.mu.Unlock()
	if old, ok := u.files[bin.ID]; ok { // built meanwhile by another load
		u.smp.FreeUnwindTable(ft.table)
		old.refs++
		return old
	}
	ft.refs = 1
	u.files[bin.ID] = ft
	if err != nil {
		u.stats.Failed++
		u.warn(fmt.Sprintf("no unwind table for %s (native frames below it use frame pointers): %v", m.FilePath(), err))
	} else {
		u.stats.Files++
		u.stats.Rows += len(rows)
		u.stats.Downgraded += downgraded
	}
	return ft
}

// buildTable parses the .eh_frame of the file behind m into kernel rows.
func buildTable(pid int, m process.Mapping) (rows []sampler.UnwindRow, base uint64, downgraded int, err error) {
	f, err := process.OpenMapped(pid, m)
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("read %s: %w", m.FilePath(), err)
	}
	t, err := unwind.Parse(ef)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(t.Rows) == 0 {
		return nil, 0, 0, fmt.Errorf("%s has no unwind information", m.FilePath())
	}
	rows, base, downgraded, err = tableRows(t)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%s: %w", m.FilePath(), err)
	}
	return rows, base, downgraded, nil
}

// tableRows turns a parsed table into the kernel's rows. Row PCs are 32
// bits: relative to the file's lowest address (base) when its addresses do
// not fit, as in a non-PIE executable linked high.
func tableRows(t *unwind.Table) (rows []sampler.UnwindRow, base uint64, downgraded int, err error) {
	if t.Rows[len(t.Rows)-1].PC > 1<<32-1 {
		base = t.Rows[0].PC
	}
	rows, downgraded, err = t.Compact(base)
	if err != nil {
		return nil, 0, 0, err
	}
	return rows, base, downgraded, nil
}

// release drops a target's hold on its files. Called with u.mu held.
func (u *unwinder) release(ids []process.FileID) {
	for _, id := range ids {
		if ft, ok := u.files[id]; ok && ft.refs > 0 {
			ft.refs--
		}
	}
}

// evictUnused frees the tables no target uses; it reports whether any was.
func (u *unwinder) evictUnused() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	freed := false
	for id, ft := range u.files {
		if ft.refs == 0 && ft.err == nil {
			u.smp.FreeUnwindTable(ft.table)
			u.stats.Files--
			u.stats.Rows -= int(ft.table.Len)
			delete(u.files, id)
			freed = true
		}
	}
	return freed
}

// forget drops pid: its files' tables stay until the space is needed.
func (u *unwinder) forget(pid int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.release(u.procs[pid])
	delete(u.procs, pid)
}

// requestRefresh asks for pid's mappings to be read again (the BPF walker
// met code outside all of them: a library loaded since). It never blocks the
// read loop; a request already queued is enough.
func (u *unwinder) requestRefresh(pid int) {
	select {
	case u.refresh <- pid:
	default:
	}
}

// run handles refresh requests until done is closed.
func (u *unwinder) run(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case pid := <-u.refresh:
			u.mu.Lock()
			_, known := u.procs[pid]
			u.mu.Unlock()
			if known {
				u.load(pid)
				if u.onRefresh != nil {
					u.onRefresh(pid)
				}
			}
		}
	}
}

func (u *unwinder) snapshot() UnwindStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.stats
}

// vdsoTable returns the table of the vDSO (time.time() and friends run
// there), read once from bprof's own mapping of it: the kernel maps the
// same image into every process. It is nil when that cannot be read.
func (u *unwinder) vdsoTable() (*fileTable, uint64) {
	u.vdsoOnce.Do(func() {
		img, err := process.ReadVDSO()
		if err != nil {
			return
		}
		ef, err := elf.NewFile(bytes.NewReader(img))
		if err != nil {
			return
		}
		vaddr := uint64(0)
		for _, p := range ef.Progs {
			if p.Type == elf.PT_LOAD {
				vaddr = p.Vaddr - p.Off // the image is mapped from its file offset 0
				break
			}
		}
		t, err := unwind.Parse(ef)
		if err != nil || len(t.Rows) == 0 {
			return
		}
		rows, base, _, err := tableRows(t)
		if err != nil {
			return
		}
		ft := &fileTable{refs: 1, base: base} // never freed
		if ft.table, ft.err = u.smp.LoadUnwindTable(rows); ft.err == nil {
			u.vdso, u.vdsoVaddr = ft, vaddr
		}
	})
	return u.vdso, u.vdsoVaddr
}

// hasNew reports whether pid maps an executable file whose table is not
// built yet (a library it loaded since the last load).
func (u *unwinder) hasNew(pid int, ms []process.Mapping) bool {
	u.mu.Lock()
	_, known := u.procs[pid]
	u.mu.Unlock()
	if !known {
		return false // first load: sampling has not started
	}
	for _, m := range ms {
		if !m.Executable() || m.Anonymous() {
			continue
		}
		bin, err := u.cache.Binary(pid, m)
		if err != nil {
			continue
		}
		u.mu.Lock()
		_, ok := u.files[bin.ID]
		u.mu.Unlock()
		if !ok {
			return true
		}
	}
	return false
}

// setBare gives the sampler pid's mappings with the tables already built,
// the others walked by frame pointers.
func (u *unwinder) setBare(pid int, ms []process.Mapping) {
	var out []sampler.UnwindMapping
	for _, m := range ms {
		if !m.Executable() {
			continue
		}
		um := sampler.UnwindMapping{Start: m.Start, End: m.End}
		if bin, err := u.cache.Binary(pid, m); err == nil && !m.Anonymous() {
			u.mu.Lock()
			ft, ok := u.files[bin.ID]
			u.mu.Unlock()
			if bias, err := bin.Bias(m); ok && err == nil && ft.err == nil {
				um.Table, um.Bias = ft.table, bias+ft.base
			}
		}
		out = append(out, um)
	}
	u.smp.SetUnwindMappings(pid, out)
}
