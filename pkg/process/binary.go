package process

import (
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
)

// FileID is the identity of a mapped file: its GNU build ID when it has
// one, else its device, inode and modification time. Two FileIDs are equal
// when they name the same file contents, so a library with a build ID is
// one FileID in every container that maps it.
type FileID struct {
	BuildID      string // hex; when set the other fields are zero
	Major, Minor uint32
	Inode        uint64
	Mtime        int64 // nanoseconds since the epoch
}

// String returns "buildid:HEX" or "file:MAJ:MIN:INODE:MTIME".
func (id FileID) String() string {
	if id.BuildID != "" {
		return "buildid:" + id.BuildID
	}
	return fmt.Sprintf("file:%d:%d:%d:%d", id.Major, id.Minor, id.Inode, id.Mtime)
}

func newFileID(buildID string, fs fileStat) FileID {
	if buildID != "" {
		return FileID{BuildID: buildID}
	}
	return FileID{Major: fs.Major, Minor: fs.Minor, Inode: fs.Inode, Mtime: fs.Mtime}
}

// Section is what a Binary keeps of an ELF section header: enough to read
// the section's bytes later from the file (see ReadSection).
type Section struct {
	Name   string
	Type   elf.SectionType
	Flags  elf.SectionFlag
	Addr   uint64 // virtual address when loaded
	Offset uint64 // offset in the file
	Size   uint64 // size in the file (in memory for SHT_NOBITS)
}

// Binary is one parsed ELF file. It holds no file descriptor and is safe
// for concurrent use once returned (it is never modified).
type Binary struct {
	ID       FileID
	BuildID  string // hex GNU build ID, "" when the file has none
	Path     string // path of the file as the target maps it
	Type     elf.Type
	Machine  elf.Machine
	Sections []Section

	loads []elf.ProgHeader // PT_LOAD segments, in file order
	named []namedSym       // functions and objects in table order, for Lookup

	// The functions, sorted by start address the first time Symbol needs
	// them: of the files a process maps, most never have a frame named,
	// and sorting libpython's alone cost ~4 ms of every start.
	sortFuncs sync.Once
	funcs     []funcSym
	ends      []uint64 // section ends, which bound zero-sized functions
}

// maxNoteSize caps how much of a note section or segment is read to find
// the build ID.
const maxNoteSize = 1 << 16

// maxSectionSize caps ReadSection.
const maxSectionSize = 1 << 30

// ParseBinary parses the ELF file in r. path is only recorded. The
// returned Binary's ID is made from the build ID alone (zero when the file
// has none); Cache.Binary sets it from the file's identity too.
//
// Parsing reads the symbol tables whole: its cost is proportional to the
// number of symbols.
func ParseBinary(r io.ReaderAt, path string) (*Binary, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("parse elf %s: %w", path, err)
	}
	defer f.Close()
	b := &Binary{Path: path, Type: f.Type, Machine: f.Machine}
	for _, s := range f.Sections {
		b.Sections = append(b.Sections, Section{
			Name: s.Name, Type: s.Type, Flags: s.Flags,
			Addr: s.Addr, Offset: s.Offset, Size: s.Size,
		})
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			b.loads = append(b.loads, p.ProgHeader)
		}
	}
	b.BuildID = buildID(f)
	b.ID = FileID{BuildID: b.BuildID}
	b.loadSymbols(f)
	return b, nil
}

// OpenBinary opens and parses the file behind mapping m of process pid
// (see OpenMapped). Its ID is set from the build ID, or else from the
// file's device, inode and modification time.
func OpenBinary(pid int, m Mapping) (*Binary, error) {
	b, _, err := openBinary(pid, m)
	return b, err
}

// openBinary is OpenBinary, also telling whether an error came from parsing
// (the file is not a usable ELF file) rather than from opening it.
func openBinary(pid int, m Mapping) (b *Binary, parseErr bool, err error) {
	f, err := OpenMapped(pid, m)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fs, err := fstat(f)
	if err != nil {
		return nil, false, err
	}
	b, err = ParseBinary(f, m.FilePath())
	if err != nil {
		return nil, true, err
	}
	b.ID = newFileID(b.BuildID, fs)
	return b, false, nil
}

// Section returns the section called name.
func (b *Binary) Section(name string) (Section, bool) {
	for _, s := range b.Sections {
		if s.Name == name {
			return s, true
		}
	}
	return Section{}, false
}

// ReadSection reads the bytes of the section called name from r, the
// same file reopened (see OpenMapped). Compressed sections are returned as
// stored.
func (b *Binary) ReadSection(r io.ReaderAt, name string) ([]byte, error) {
	s, ok := b.Section(name)
	if !ok {
		return nil, fmt.Errorf("read section %s of %s: %w", name, b.Path, os.ErrNotExist)
	}
	if s.Type == elf.SHT_NOBITS {
		return nil, fmt.Errorf("read section %s of %s: section has no bytes in the file", name, b.Path)
	}
	if s.Size > maxSectionSize {
		return nil, fmt.Errorf("read section %s of %s: size %d over the %d limit", name, b.Path, s.Size, maxSectionSize)
	}
	// Read in chunks so that a size field larger than the file costs no
	// more memory than the file has.
	const chunk = 1 << 16
	buf := make([]byte, 0, min(s.Size, chunk))
	for off := uint64(0); off < s.Size; {
		n := min(s.Size-off, chunk)
		buf = slices.Grow(buf, int(n))
		got, err := r.ReadAt(buf[len(buf):len(buf)+int(n)], int64(s.Offset+off))
		buf = buf[:len(buf)+got]
		if err != nil && (uint64(got) < n || !errors.Is(err, io.EOF)) {
			return nil, fmt.Errorf("read section %s of %s: %w", name, b.Path, err)
		}
		off += n
	}
	return buf, nil
}

// Bias returns the load bias of the file as mapped by m: a runtime address
// minus the ELF virtual address it was linked at. It is computed from the
// PT_LOAD segment whose file range contains m.Offset, preferring one whose
// permissions match, and is 0 for a non-PIE executable.
func (b *Binary) Bias(m Mapping) (uint64, error) {
	page := uint64(os.Getpagesize())
	var best *elf.ProgHeader
	for i := range b.loads {
		p := &b.loads[i]
		lo := p.Off &^ (page - 1)
		if m.Offset < lo || m.Offset >= p.Off+max(p.Filesz, 1) {
			continue
		}
		if best == nil || permsMatch(p.Flags, m.Perms) && !permsMatch(best.Flags, m.Perms) {
			best = p
		}
	}
	if best == nil {
		return 0, fmt.Errorf("compute load bias of %s: no PT_LOAD segment holds file offset %#x", b.Path, m.Offset)
	}
	// The byte at file offset m.Offset is at m.Start at run time and at
	// Vaddr + (m.Offset - Off) in the ELF file. Unsigned wrap-around keeps
	// this right when m.Offset < Off.
	return m.Start - (best.Vaddr + m.Offset - best.Off), nil
}

func permsMatch(f elf.ProgFlag, perms string) bool {
	return (f&elf.PF_X != 0) == (len(perms) > 2 && perms[2] == 'x')
}

func buildID(f *elf.File) string {
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE || s.Size > maxNoteSize {
			continue
		}
		data, err := s.Data()
		if err != nil {
			continue
		}
		if id := findBuildID(data, f.ByteOrder); id != "" {
			return id
		}
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE || p.Filesz > maxNoteSize {
			continue
		}
		data := make([]byte, p.Filesz)
		if _, err := p.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
			continue
		}
		if id := findBuildID(data, f.ByteOrder); id != "" {
			return id
		}
	}
	return ""
}

// findBuildID walks the ELF notes in data and returns the hex descriptor of
// the first NT_GNU_BUILD_ID note owned by "GNU".
func findBuildID(data []byte, order binary.ByteOrder) string {
	const ntGNUBuildID = 3
	align4 := func(n uint64) uint64 { return (n + 3) &^ 3 }
	for len(data) >= 12 {
		namesz := uint64(order.Uint32(data[0:]))
		descsz := uint64(order.Uint32(data[4:]))
		typ := order.Uint32(data[8:])
		data = data[12:]
		nameEnd := align4(namesz)
		if nameEnd > uint64(len(data)) {
			return ""
		}
		name := data[:namesz]
		data = data[nameEnd:]
		descEnd := align4(descsz)
		if descsz > uint64(len(data)) {
			return ""
		}
		desc := data[:descsz]
		if descEnd > uint64(len(data)) {
			descEnd = uint64(len(data))
		}
		data = data[descEnd:]
		if typ == ntGNUBuildID && string(name) == "GNU\x00" && len(desc) > 0 {
			return hex.EncodeToString(desc)
		}
	}
	return ""
}
