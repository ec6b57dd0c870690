package python

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxDictEntries caps the entries read from one dict of a target (sys.modules
// of a large service holds a few thousand).
const MaxDictEntries = 1 << 16

// Type flags read from tp_flags.
const (
	tpflagsInlineValues    = 1 << 2  // Py_TPFLAGS_INLINE_VALUES (3.13+)
	tpflagsManagedDict     = 1 << 4  // Py_TPFLAGS_MANAGED_DICT (3.11+)
	tpflagsUnicodeSubclass = 1 << 28 // Py_TPFLAGS_UNICODE_SUBCLASS
)

// dictKeysGeneral is DICT_KEYS_GENERAL (3.11+): entries carry the hash.
const dictKeysGeneral = 0

// dictItem is one live entry of a dict: its key and value objects.
type dictItem struct{ key, value uint64 }

// keysTable is the entry array of a PyDictKeysObject.
type keysTable struct {
	entries   []byte // nentries entries of entrySize bytes
	entrySize int    // 24 (hash, key, value) or 16 (key, value)
	n         int
}

func (k *keysTable) key(i int) uint64 {
	off := i * k.entrySize
	if k.entrySize == 24 {
		off += 8 // skip me_hash
	}
	return binary.LittleEndian.Uint64(k.entries[off:])
}

func (k *keysTable) value(i int) uint64 {
	return binary.LittleEndian.Uint64(k.entries[(i+1)*k.entrySize-8:])
}

// readKeys reads the entries of the PyDictKeysObject at addr: the header,
// then the entries after the index table, in one read each.
func readKeys(mem io.ReaderAt, o *Offsets, addr uint64) (*keysTable, error) {
	if addr == 0 {
		return nil, fmt.Errorf("read dict keys: null pointer")
	}
	var hdr [40]byte
	var indices uint64 // offset of dk_indices
	var indexBytes uint64
	var n int64
	var slots uint64 // dk_size: no more entries than that
	k := &keysTable{entrySize: 24}
	switch o.DictKeysLayout {
	case KeysSized:
		if err := readFull(mem, addr, hdr[:40]); err != nil {
			return nil, fmt.Errorf("read dict keys at %#x: %w", addr, err)
		}
		size := binary.LittleEndian.Uint64(hdr[8:])
		if size == 0 || size&(size-1) != 0 || size > 4*MaxDictEntries {
			return nil, fmt.Errorf("read dict keys at %#x: bad dk_size %d", addr, int64(size))
		}
		ix := uint64(8)
		switch {
		case size <= 0xff:
			ix = 1
		case size <= 0xffff:
			ix = 2
		case size <= 0xffffffff:
			ix = 4
		}
		indices, indexBytes, slots = 40, size*ix, size
		n = int64(binary.LittleEndian.Uint64(hdr[32:]))
	case KeysLog2:
		if err := readFull(mem, addr, hdr[:32]); err != nil {
			return nil, fmt.Errorf("read dict keys at %#x: %w", addr, err)
		}
		log2Size, log2Index, kind := hdr[8], hdr[9], hdr[10]
		if log2Size > 20 || log2Index < log2Size || log2Index > log2Size+3 || kind > 2 {
			return nil, fmt.Errorf("read dict keys at %#x: bad header (log2 size %d, log2 index bytes %d, kind %d)",
				addr, log2Size, log2Index, kind)
		}
		if kind != dictKeysGeneral {
			k.entrySize = 16
		}
		indices, indexBytes, slots = 32, 1<<log2Index, 1<<log2Size
		n = int64(binary.LittleEndian.Uint64(hdr[24:]))
	default:
		return nil, fmt.Errorf("read dict keys: no dict layout for this version")
	}
	if n < 0 || n > MaxDictEntries || uint64(n) > slots {
		return nil, fmt.Errorf("read dict keys at %#x: %d entries for %d slots (cap %d)", addr, n, slots, MaxDictEntries)
	}
	k.n = int(n)
	k.entries = make([]byte, k.n*k.entrySize)
	if err := readFull(mem, addr+indices+indexBytes, k.entries); err != nil {
		return nil, fmt.Errorf("read %d dict entries at %#x: %w", k.n, addr, err)
	}
	return k, nil
}

// readValues reads n value pointers of a split table or of an object's
// values: vals is what ma_values (or the object) points to.
func readValues(mem io.ReaderAt, o *Offsets, vals uint64, n int) ([]uint64, error) {
	b := make([]byte, 8*n)
	if err := readFull(mem, at(vals, o.DictValuesItems), b); err != nil {
		return nil, fmt.Errorf("read %d dict values at %#x: %w", n, vals, err)
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out, nil
}

// readDict returns the live entries of the dict at addr in entry order.
// A combined table holds values in its entries; a split table (an
// instance's __dict__ sharing its type's keys) in the array ma_values points
// to, indexed like the entries. Deleted entries (NULL key, or ≤3.10 the dummy
// key with a NULL value) and NULL values are left out.
func readDict(mem io.ReaderAt, o *Offsets, addr uint64) ([]dictItem, error) {
	if addr == 0 {
		return nil, fmt.Errorf("read dict: null pointer")
	}
	var hdr [48]byte
	if err := readFull(mem, addr, hdr[:o.DictValues+8]); err != nil {
		return nil, fmt.Errorf("read dict at %#x: %w", addr, err)
	}
	keys := binary.LittleEndian.Uint64(hdr[o.DictKeys:])
	vals := binary.LittleEndian.Uint64(hdr[o.DictValues:])
	k, err := readKeys(mem, o, keys)
	if err != nil {
		return nil, fmt.Errorf("read dict at %#x: %w", addr, err)
	}
	var split []uint64
	if vals != 0 {
		if split, err = readValues(mem, o, vals, k.n); err != nil {
			return nil, fmt.Errorf("read dict at %#x: %w", addr, err)
		}
	}
	items := make([]dictItem, 0, k.n)
	for i := 0; i < k.n; i++ {
		it := dictItem{key: k.key(i)}
		if split != nil {
			it.value = split[i]
		} else {
			it.value = k.value(i)
		}
		if it.key != 0 && it.value != 0 {
			items = append(items, it)
		}
	}
	return items, nil
}

// objReader reads objects of one target for one call, caching what does
// not change while the call runs: types, and where a name sits in the keys
// a type's instances share.
type objReader struct {
	mem   io.ReaderAt
	o     *Offsets
	types map[uint64]*typeInfo
	// shared maps a split table's keys (shared by a type's instances) to
	// the entry index of each name looked up, -1 if absent.
	shared map[uint64]map[string]int
}

// Caps on the per-call caches.
const (
	maxCachedTypes = 1024
	maxCachedKeys  = 1024
)

// Caps on the work of one call, whatever the target holds: every read
// counts, and so do the bytes. Naming 4096 threads takes about 25,000 reads
// and a few MiB. Variables only so that the fuzz test can lower them.
var (
	maxReadsPerCall = 1 << 16
	maxBytesPerCall = 32 << 20
)

// errReadBudget ends a call that reached maxReadsPerCall or
// maxBytesPerCall.
var errReadBudget = errors.New("read budget of one call used up")

// budgetMem is an io.ReaderAt that refuses reads past a budget.
type budgetMem struct {
	mem          io.ReaderAt
	reads, bytes int
}

func (m *budgetMem) ReadAt(b []byte, off int64) (int, error) {
	m.reads--
	m.bytes -= len(b)
	if m.reads < 0 || m.bytes < 0 {
		return 0, errReadBudget
	}
	return m.mem.ReadAt(b, off)
}

func newObjReader(mem io.ReaderAt, o *Offsets) *objReader {
	return &objReader{
		mem:    &budgetMem{mem: mem, reads: maxReadsPerCall, bytes: maxBytesPerCall},
		o:      o,
		types:  map[uint64]*typeInfo{},
		shared: map[uint64]map[string]int{},
	}
}

// typeInfo is what the reader needs of a type object.
type typeInfo struct {
	basicSize, itemSize, dictOffset int64
	flags                           uint64
	cachedKeys                      uint64 // ht_cached_keys, 3.11+ heap types with a managed dict
}

// typeAt reads the type object at typ.
func (r *objReader) typeAt(typ uint64) (*typeInfo, error) {
	if ti, ok := r.types[typ]; ok {
		return ti, nil
	}
	o := r.o
	if typ == 0 {
		return nil, fmt.Errorf("read type: null pointer")
	}
	b := make([]byte, o.TypeDictOffset+8)
	if err := readFull(r.mem, typ, b); err != nil {
		return nil, fmt.Errorf("read type object at %#x: %w", typ, err)
	}
	ti := &typeInfo{
		basicSize:  int64(binary.LittleEndian.Uint64(b[o.TypeBasicSize:])),
		itemSize:   int64(binary.LittleEndian.Uint64(b[o.TypeItemSize:])),
		flags:      binary.LittleEndian.Uint64(b[o.TypeFlags:]),
		dictOffset: int64(binary.LittleEndian.Uint64(b[o.TypeDictOffset:])),
	}
	if o.HeapTypeCachedKeys != Absent && ti.flags&tpflagsManagedDict != 0 {
		// Only heap types have the flag, so the PyHeapTypeObject tail exists.
		k, err := readU64(r.mem, at(typ, o.HeapTypeCachedKeys))
		if err != nil {
			return nil, fmt.Errorf("read cached keys of type at %#x: %w", typ, err)
		}
		ti.cachedKeys = k
	}
	if len(r.types) < maxCachedTypes {
		r.types[typ] = ti
	}
	return ti, nil
}

// strEquals reports whether the object at addr is the ASCII str want. It
// reads the header and want's bytes at once, then checks the type only for
// a match, so a dict scan costs about one read a key.
func (r *objReader) strEquals(addr uint64, want string) (bool, error) {
	o := r.o
	b := make([]byte, o.ASCIIDataOffset+len(want))
	if err := readFull(r.mem, addr, b); err != nil {
		return false, err // callers pass unreadable keys over: no context to format
	}
	n := binary.LittleEndian.Uint64(b[o.UnicodeLength:])
	state := binary.LittleEndian.Uint32(b[o.UnicodeState:])
	if n != uint64(len(want)) || state&stateCompact == 0 || state&stateASCII == 0 ||
		string(b[o.ASCIIDataOffset:]) != want {
		return false, nil
	}
	ti, err := r.typeAt(binary.LittleEndian.Uint64(b[o.ObType:]))
	if err != nil {
		return false, err
	}
	return ti.flags&tpflagsUnicodeSubclass != 0, nil
}

// strGuess is how many bytes of a string's data readStr reads with its
// header: most thread names fit.
const strGuess = 64

// readStr reads the str object at addr, refusing other types. A compact
// ASCII string of up to strGuess characters takes one read.
func (r *objReader) readStr(addr uint64) (string, error) {
	o := r.o
	if addr == 0 {
		return "", fmt.Errorf("read str: null pointer")
	}
	b := make([]byte, o.CompactUnicodeData+strGuess)
	if err := readFull(r.mem, addr, b); err != nil {
		// Near the end of a mapping: read the header alone.
		b = b[:o.UnicodeState+4]
		if err := readFull(r.mem, addr, b); err != nil {
			return "", fmt.Errorf("read str at %#x: %w", addr, err)
		}
	}
	ti, err := r.typeAt(binary.LittleEndian.Uint64(b[o.ObType:]))
	if err != nil {
		return "", fmt.Errorf("read type of str at %#x: %w", addr, err)
	}
	if ti.flags&tpflagsUnicodeSubclass == 0 {
		return "", fmt.Errorf("object at %#x is not a str", addr)
	}
	n := binary.LittleEndian.Uint64(b[o.UnicodeLength:])
	state := binary.LittleEndian.Uint32(b[o.UnicodeState:])
	if state&stateCompact != 0 && state&stateASCII != 0 && len(b) >= o.ASCIIDataOffset && n <= uint64(len(b)-o.ASCIIDataOffset) {
		return string(b[o.ASCIIDataOffset : o.ASCIIDataOffset+int(n)]), nil
	}
	return readString(r.mem, o, addr)
}

// lookup returns the value of the str key name in the dict at addr, or 0
// when it has none. Keys that cannot be read are passed over.
func (r *objReader) lookup(dict uint64, name string) (uint64, error) {
	if dict == 0 {
		return 0, fmt.Errorf("read dict: null pointer")
	}
	o := r.o
	var hdr [48]byte
	if err := readFull(r.mem, dict, hdr[:o.DictValues+8]); err != nil {
		return 0, fmt.Errorf("read dict at %#x: %w", dict, err)
	}
	keys := binary.LittleEndian.Uint64(hdr[o.DictKeys:])
	if vals := binary.LittleEndian.Uint64(hdr[o.DictValues:]); vals != 0 {
		// A split table: the keys are shared, where name sits is cached.
		return r.sharedValue(keys, vals, name, false)
	}
	k, err := readKeys(r.mem, o, keys)
	if err != nil {
		return 0, fmt.Errorf("read dict at %#x: %w", dict, err)
	}
	for i := 0; i < k.n; i++ {
		key, value := k.key(i), k.value(i)
		if key == 0 || value == 0 {
			continue
		}
		ok, err := r.strEquals(key, name)
		if ok {
			return value, nil
		}
		if errors.Is(err, errReadBudget) {
			return 0, err
		}
	}
	return 0, nil
}

// sharedIndex returns the entry index of name in the shared keys at keys,
// or -1.
func (r *objReader) sharedIndex(keys uint64, name string) (int, error) {
	if ix, ok := r.shared[keys][name]; ok {
		return ix, nil
	}
	k, err := readKeys(r.mem, r.o, keys)
	if err != nil {
		return 0, fmt.Errorf("read shared keys: %w", err)
	}
	ix := -1
	for i := 0; i < k.n; i++ {
		if key := k.key(i); key != 0 {
			eq, err := r.strEquals(key, name)
			if errors.Is(err, errReadBudget) {
				return 0, err
			}
			if eq {
				ix = i
				break
			}
		}
	}
	if r.shared[keys] == nil {
		if len(r.shared) >= maxCachedKeys {
			return ix, nil
		}
		r.shared[keys] = map[string]int{}
	}
	r.shared[keys][name] = ix
	return ix, nil
}

// sharedValue reads the value of name from values keyed by the shared keys
// at keys. inline says vals are an object's inline values (3.13+), which
// hold a value only while their valid byte is set.
func (r *objReader) sharedValue(keys, vals uint64, name string, inline bool) (uint64, error) {
	ix, err := r.sharedIndex(keys, name)
	if err != nil || ix < 0 {
		return 0, err
	}
	o := r.o
	b := make([]byte, o.DictValuesItems+8*(ix+1))
	if err := readFull(r.mem, vals, b); err != nil {
		return 0, fmt.Errorf("read value %d at %#x: %w", ix, vals, err)
	}
	if o.InstanceDict == InlineValues {
		// PyDictValues: capacity, size, embedded, valid.
		if capacity, valid := b[0], b[3]; ix >= int(capacity) || inline && valid == 0 {
			return 0, nil
		}
	}
	return binary.LittleEndian.Uint64(b[o.DictValuesItems+8*ix:]), nil
}

// attr returns the instance attribute name of the object at addr (what
// the object's __dict__ holds, not class attributes or properties), or 0
// when it has none.
func (r *objReader) attr(addr uint64, name string) (uint64, error) {
	o := r.o
	if addr < 32 {
		return 0, fmt.Errorf("read object: bad address %#x", addr)
	}
	// One read for the pre-header (3.11+: values and dict pointers at −32
	// and −24), the type, and the first two slots (≤3.10: the dict at
	// tp_dictoffset 16 of a class written in Python).
	var b [64]byte
	if err := readFull(r.mem, addr-32, b[:]); err != nil {
		return 0, fmt.Errorf("read object at %#x: %w", addr, err)
	}
	word := func(off int) uint64 { return binary.LittleEndian.Uint64(b[32+off:]) }
	ti, err := r.typeAt(word(o.ObType))
	if err != nil {
		return 0, fmt.Errorf("read type of object at %#x: %w", addr, err)
	}
	if ti.flags&tpflagsManagedDict != 0 {
		switch o.InstanceDict {
		case ValuesOrDict311:
			if vals := word(-32); vals != 0 {
				return r.sharedValue(ti.cachedKeys, vals, name, false)
			}
			return r.dictAt(word(-24), name)
		case TaggedDictOrValues:
			if dorv := word(-24); dorv&1 != 0 {
				return r.sharedValue(ti.cachedKeys, dorv+1, name, false)
			}
			return r.dictAt(word(-24), name)
		case InlineValues:
			if dict := word(-24); dict != 0 || ti.flags&tpflagsInlineValues == 0 {
				return r.dictAt(dict, name)
			}
			if ti.basicSize <= 0 || ti.basicSize > 1<<20 {
				return 0, fmt.Errorf("object at %#x: bad tp_basicsize %d", addr, ti.basicSize)
			}
			return r.sharedValue(ti.cachedKeys, addr+uint64(ti.basicSize), name, true)
		}
	}
	// tp_dictoffset: _PyObject_GetDictPtr of ≤3.10, and of types without a
	// managed dict after.
	off := ti.dictOffset
	switch {
	case off == 0:
		return 0, nil
	case off == 16 || off == 24:
		return r.dictAt(word(int(off)), name)
	case off < 0:
		// A variable-size object: the dict is off bytes from its end.
		n := int64(word(16)) // ob_size
		if n < 0 {
			n = -n
		}
		if n > 1<<32 || ti.itemSize < 0 || ti.itemSize > 1<<16 || ti.basicSize < 0 || ti.basicSize > 1<<20 || off < -1<<20 {
			return 0, fmt.Errorf("object at %#x: bad size %d×%d+%d or dict offset %d", addr, n, ti.itemSize, ti.basicSize, off)
		}
		off += (ti.basicSize + n*ti.itemSize + 7) &^ 7
		if off < 0 {
			return 0, fmt.Errorf("object at %#x: dict offset %d before the object", addr, off)
		}
	case off > 1<<20:
		return 0, fmt.Errorf("object at %#x: bad tp_dictoffset %d", addr, off)
	}
	dict, err := readU64(r.mem, addr+uint64(off))
	if err != nil {
		return 0, fmt.Errorf("read __dict__ of object at %#x: %w", addr, err)
	}
	return r.dictAt(dict, name)
}

// dictAt looks name up in the dict at dict; a NULL dict holds nothing.
func (r *objReader) dictAt(dict uint64, name string) (uint64, error) {
	if dict == 0 {
		return 0, nil
	}
	return r.lookup(dict, name)
}

// readLong reads a non-negative int of at most 64 bits: 30-bit digits after
// ob_size (≤3.11: signed digit count) or lv_tag (3.12+: digit count << 3,
// sign in the low 2 bits: 0 positive, 1 zero, 2 negative).
func readLong(mem io.ReaderAt, o *Offsets, addr uint64) (uint64, error) {
	if addr == 0 {
		return 0, fmt.Errorf("read int: null pointer")
	}
	// An int of up to 2 digits fits in 32 bytes, the smallest block the
	// allocator gives one; a third digit takes a second read.
	var b [40]byte
	if err := readFull(mem, addr, b[:o.LongDigits+8]); err != nil {
		return 0, fmt.Errorf("read int at %#x: %w", addr, err)
	}
	size := binary.LittleEndian.Uint64(b[o.LongSize:])
	var n uint64
	if o.LongTagged {
		switch size & 3 {
		case 1:
			return 0, nil
		case 2:
			return 0, fmt.Errorf("read int at %#x: negative", addr)
		case 3:
			return 0, fmt.Errorf("read int at %#x: bad sign in lv_tag %#x", addr, size)
		}
		n = size >> 3
	} else {
		if int64(size) < 0 {
			return 0, fmt.Errorf("read int at %#x: negative", addr)
		}
		n = size
	}
	if n > 3 {
		return 0, fmt.Errorf("read int at %#x: %d digits, more than 64 bits", addr, n)
	}
	if n == 3 {
		if err := readFull(mem, at(addr, o.LongDigits+8), b[o.LongDigits+8:o.LongDigits+12]); err != nil {
			return 0, fmt.Errorf("read int at %#x: %w", addr, err)
		}
	}
	var v uint64
	for i := uint64(0); i < n; i++ {
		d := uint64(binary.LittleEndian.Uint32(b[o.LongDigits+4*int(i):]))
		if d >= 1<<30 || i == 2 && d >= 1<<4 {
			return 0, fmt.Errorf("read int at %#x: bad digit %#x or more than 64 bits", addr, d)
		}
		v |= d << (30 * i)
	}
	return v, nil
}
