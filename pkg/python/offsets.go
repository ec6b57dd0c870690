package python

import "fmt"

// FrameKind says which structure the frame chain is made of.
type FrameKind uint8

const (
	// FrameObjectKind: PyFrameObject (3.7–3.10), reached by tstate->frame
	// and linked by f_back.
	FrameObjectKind FrameKind = iota + 1
	// InterpreterFrameKind: _PyInterpreterFrame (3.11+), reached by
	// tstate->cframe->current_frame (3.11, 3.12) or tstate->current_frame
	// (3.13+) and linked by previous.
	InterpreterFrameKind
)

// InstrKind says what the frame's instruction field (Offsets.FrameInstr)
// holds, and so how the walker turns it into the instruction offset Line
// expects.
type InstrKind uint8

const (
	// InstrLastiBytes: int f_lasti, byte offset of the last instruction
	// started in co_code, -1 before the first (3.7–3.9). Recorded as is.
	InstrLastiBytes InstrKind = iota + 1
	// InstrLastiUnits: int f_lasti in 2-byte code units, -1 before the first
	// (3.10). Recorded as is.
	InstrLastiUnits
	// InstrPrevPtr: _Py_CODEUNIT *prev_instr, the last instruction started
	// (3.11, 3.12). Recorded as the byte offset prev_instr − (code +
	// co_code_adaptive); -2 before the first instruction.
	InstrPrevPtr
	// InstrPtr: _Py_CODEUNIT *instr_ptr, the instruction executing or about
	// to execute (3.13+). Recorded as the byte offset instr_ptr − (code +
	// co_code_adaptive).
	InstrPtr
)

// LineTableFormat names the encoding of a code object's line table.
type LineTableFormat uint8

const (
	// Lnotab is co_lnotab (3.7–3.9): (byte delta, signed line delta) pairs.
	Lnotab LineTableFormat = iota + 1
	// Linetable310 is 3.10's co_linetable: (byte delta, signed line delta)
	// pairs, line delta -128 meaning no line.
	Linetable310
	// LocationTable is the 3.11+ co_linetable described in CPython's
	// Objects/locations.md.
	LocationTable
)

// Absent marks an offset the version does not have.
const Absent = -1

// Offsets is one row of CPython layout facts for x86-64 default builds. Each
// field is the byte offset of the CPython member it is named after, or Absent.
// A row is shared by every patch release of a minor version.
type Offsets struct {
	// _PyRuntimeState
	RuntimeInterpretersHead int // interpreters.head

	// PyInterpreterState
	InterpNext        int // next
	InterpThreadsHead int // tstate_head (≤3.10), threads.head (3.11+)
	// InterpModules is sys.modules, a dict: modules (≤3.11), imports.modules
	// (3.12+). ThreadNames starts there.
	InterpModules int

	// PyThreadState
	TstateNext           int // next
	TstateInterp         int // interp
	TstateThreadID       int // thread_id: pthread_self(), the thread's fsbase
	TstateNativeThreadID int // native_thread_id: TID (3.11+)
	TstateFrame          int // frame, a PyFrameObject* (≤3.10)
	TstateCframe         int // cframe, a _PyCFrame* (3.11, 3.12)
	CframeCurrentFrame   int // _PyCFrame.current_frame (3.11, 3.12)
	TstateCurrentFrame   int // current_frame (3.13+)

	// PyFrameObject (≤3.10) or _PyInterpreterFrame (3.11+)
	FrameKind     FrameKind
	FrameCode     int       // f_code, or f_executable (3.13+)
	FramePrevious int       // f_back (≤3.10), previous (3.11+)
	FrameInstr    int       // f_lasti (≤3.10), prev_instr (3.11, 3.12), instr_ptr (3.13+)
	InstrKind     InstrKind // what FrameInstr holds
	FrameOwner    int       // owner, a char (3.11+)
	FrameIsEntry  int       // is_entry, a bool (3.11 only)
	// OwnerShimMin: frames whose owner is at least this are the
	// interpreter's own entry frames, not Python code, and are skipped
	// (3.12+: FRAME_OWNED_BY_CSTACK = 3; 3.14 also
	// FRAME_OWNED_BY_INTERPRETER). Absent before 3.12.
	OwnerShimMin int
	// OwnerGenerator is FRAME_OWNED_BY_GENERATOR (3.11+): such frames are
	// never incomplete.
	OwnerGenerator int
	// TaggedExecutable: f_executable is a _PyStackRef whose low 3 bits are
	// tags to clear (3.14).
	TaggedExecutable bool

	// PyCodeObject
	CodeCode           int // co_code, a bytes object (≤3.10)
	CodeAdaptive       int // co_code_adaptive (3.11+) = PyCode_Type.tp_basicsize
	CodeFirstLineNo    int // co_firstlineno, an int
	CodeFilename       int // co_filename
	CodeName           int // co_name
	CodeQualname       int // co_qualname (3.11+)
	CodeLineTable      int // co_lnotab (≤3.9), co_linetable (3.10+)
	CodeFirstTraceable int // _co_firsttraceable, an int in code units (3.11+)
	LineTable          LineTableFormat
	// CheckOffset is the start of 8 bytes of the code object that never
	// change while it lives and end with co_firstlineno (co_flags or
	// co_stacksize, then co_firstlineno). The walker records them as the
	// frame's check value so the symbolizer can tell a reused address.
	CheckOffset int

	// Dicts and instance attributes, which ThreadNames reads.
	DictKeysLayout DictKeysLayout // how PyDictKeysObject is laid out
	// DictValuesItems is where the value array starts in what ma_values
	// points to: 0 for a PyObject** (≤3.10) or PyDictValues.values (3.11,
	// 3.12), 8 after capacity, size, embedded and valid (3.13+).
	DictValuesItems int
	InstanceDict    InstanceDictKind // where an instance's attributes live
	// HeapTypeCachedKeys is PyHeapTypeObject.ht_cached_keys, the shared keys
	// of instances whose values live outside a dict (3.11+).
	HeapTypeCachedKeys int
	// LongTagged: PyLongObject holds lv_tag (digit count << 3 | sign) where
	// ob_size was (3.12+).
	LongTagged bool

	// Objects
	ObType             int // PyObject.ob_type
	BytesSize          int // PyBytesObject ob_size
	BytesData          int // PyBytesObject ob_sval
	UnicodeLength      int // PyASCIIObject length
	UnicodeState       int // PyASCIIObject state bit field
	ASCIIDataOffset    int // sizeof(PyASCIIObject): compact ASCII data
	CompactUnicodeData int // sizeof(PyCompactUnicodeObject): compact non-ASCII data
	TypeBasicSize      int // PyTypeObject.tp_basicsize
	TypeItemSize       int // PyTypeObject.tp_itemsize
	TypeFlags          int // PyTypeObject.tp_flags
	TypeDictOffset     int // PyTypeObject.tp_dictoffset
	ModuleDict         int // PyModuleObject.md_dict
	DictKeys           int // PyDictObject.ma_keys
	DictValues         int // PyDictObject.ma_values
	LongSize           int // PyLongObject ob_size (≤3.11) or long_value.lv_tag (3.12+)
	LongDigits         int // PyLongObject ob_digit (≤3.11) or long_value.ob_digit (3.12+)
}

// DictKeysLayout names a PyDictKeysObject layout.
type DictKeysLayout uint8

const (
	// KeysSized (≤3.10): dk_refcnt, dk_size, dk_lookup, dk_usable,
	// dk_nentries, then dk_indices at 40; every entry is a PyDictKeyEntry
	// (hash, key, value).
	KeysSized DictKeysLayout = iota + 1
	// KeysLog2 (3.11+): dk_refcnt, dk_log2_size, dk_log2_index_bytes,
	// dk_kind, dk_version, dk_usable, dk_nentries, then dk_indices at 32;
	// entries are PyDictKeyEntry for DICT_KEYS_GENERAL, else
	// PyDictUnicodeEntry (key, value).
	KeysLog2
)

// InstanceDictKind says where a Python object's instance attributes live.
type InstanceDictKind uint8

const (
	// DictAtOffset (≤3.10): a dict at tp_dictoffset (negative: from the end
	// of a variable-size object).
	DictAtOffset InstanceDictKind = iota + 1
	// ValuesOrDict311 (3.11): for Py_TPFLAGS_MANAGED_DICT types, a
	// PyDictValues* at obj−32 (values keyed by ht_cached_keys) or, when it is
	// NULL, a dict at obj−24 (_PyObject_ValuesPointer,
	// _PyObject_ManagedDictPointer in Include/internal/pycore_object.h).
	ValuesOrDict311
	// TaggedDictOrValues (3.12): for managed-dict types a PyDictOrValues at
	// obj−24: a dict, or a PyDictValues* minus 1 when bit 0 is set
	// (_PyObject_DictOrValuesPointer, _PyDictOrValues_GetValues).
	TaggedDictOrValues
	// InlineValues (3.13+): for managed-dict types a dict at obj−24
	// (MANAGED_DICT_OFFSET) or, when it is NULL and the type has
	// Py_TPFLAGS_INLINE_VALUES, a PyDictValues at obj + tp_basicsize whose
	// valid byte is set (_PyObject_InlineValues).
	InlineValues
)

// offsetsTable is indexed by minor version − 7. Read only.
//
// Sources: /work/shared/notes/cpython-frames.md (3.8–3.14, checked there
// against DWARF, _Py_DebugOffsets and live walks); 3.7 from the DWARF of
// pyenv's 3.7.16 libpython (gdb `print &((T*)0)->field`, `ptype /o`);
// 3.14 CodeFirstTraceable from CPython 3.14's headers; 3.14 InterpNext (7272)
// from the _Py_DebugOffsets of Debian sid's 3.14.10, which CheckDebugOffsets
// compares with this row at run time (it caught 7264 there).
//
// Thread-name cells (InterpModules to LongTagged): 3.7–3.13 from the DWARF
// of pyenv's builds (TestOffsetsDWARF checks them): PyInterpreterState's
// modules (≤3.11) or imports.modules (3.12+, struct _import_state in
// Include/internal/pycore_interp.h), struct _dictkeysobject and struct
// _dictvalues (Objects/dict-common.h ≤3.10, Include/internal/pycore_dict.h
// 3.11+), PyHeapTypeObject.ht_cached_keys (Include/cpython/object.h). 3.14
// InterpModules (7688) from the _Py_DebugOffsets of Debian sid's 3.14.10
// (interpreter_state.imports_modules, checked at run time like the rest);
// 3.14 dict keys, values and ht_cached_keys (880, as in 3.12 and 3.13: the
// fields before it did not move) from CPython 3.14's pycore_dict.h and
// object.h, and by reading a live sid 3.14 instance's __dict__ ma_keys back
// at its type + 880. The instance layouts (InstanceDictKind) follow
// Include/internal/pycore_object.h of each version.
var offsetsTable = [...]Offsets{
	7: {
		RuntimeInterpretersHead: 24,
		InterpNext:              0, InterpThreadsHead: 8,
		TstateNext: 8, TstateInterp: 16, TstateThreadID: 176, TstateNativeThreadID: Absent,
		TstateFrame: 24, TstateCframe: Absent, CframeCurrentFrame: Absent, TstateCurrentFrame: Absent,
		FrameKind: FrameObjectKind, FrameCode: 32, FramePrevious: 24, FrameInstr: 104, InstrKind: InstrLastiBytes,
		FrameOwner: Absent, FrameIsEntry: Absent, OwnerShimMin: Absent, OwnerGenerator: Absent,
		CodeCode: 40, CodeAdaptive: Absent, CodeFirstLineNo: 36, CodeFilename: 96, CodeName: 104,
		CodeQualname: Absent, CodeLineTable: 112, CodeFirstTraceable: Absent, LineTable: Lnotab, CheckOffset: 32,
		ASCIIDataOffset: 48, CompactUnicodeData: 72,
		InterpModules: 40, DictKeysLayout: KeysSized, DictValuesItems: 0, InstanceDict: DictAtOffset, HeapTypeCachedKeys: Absent,
	},
	8: {
		RuntimeInterpretersHead: 32,
		InterpNext:              0, InterpThreadsHead: 8,
		TstateNext: 8, TstateInterp: 16, TstateThreadID: 176, TstateNativeThreadID: Absent,
		TstateFrame: 24, TstateCframe: Absent, CframeCurrentFrame: Absent, TstateCurrentFrame: Absent,
		FrameKind: FrameObjectKind, FrameCode: 32, FramePrevious: 24, FrameInstr: 104, InstrKind: InstrLastiBytes,
		FrameOwner: Absent, FrameIsEntry: Absent, OwnerShimMin: Absent, OwnerGenerator: Absent,
		CodeCode: 48, CodeAdaptive: Absent, CodeFirstLineNo: 40, CodeFilename: 104, CodeName: 112,
		CodeQualname: Absent, CodeLineTable: 120, CodeFirstTraceable: Absent, LineTable: Lnotab, CheckOffset: 36,
		ASCIIDataOffset: 48, CompactUnicodeData: 72,
		InterpModules: 56, DictKeysLayout: KeysSized, DictValuesItems: 0, InstanceDict: DictAtOffset, HeapTypeCachedKeys: Absent,
	},
	9: {
		RuntimeInterpretersHead: 32,
		InterpNext:              0, InterpThreadsHead: 8,
		TstateNext: 8, TstateInterp: 16, TstateThreadID: 176, TstateNativeThreadID: Absent,
		TstateFrame: 24, TstateCframe: Absent, CframeCurrentFrame: Absent, TstateCurrentFrame: Absent,
		FrameKind: FrameObjectKind, FrameCode: 32, FramePrevious: 24, FrameInstr: 104, InstrKind: InstrLastiBytes,
		FrameOwner: Absent, FrameIsEntry: Absent, OwnerShimMin: Absent, OwnerGenerator: Absent,
		CodeCode: 48, CodeAdaptive: Absent, CodeFirstLineNo: 40, CodeFilename: 104, CodeName: 112,
		CodeQualname: Absent, CodeLineTable: 120, CodeFirstTraceable: Absent, LineTable: Lnotab, CheckOffset: 36,
		ASCIIDataOffset: 48, CompactUnicodeData: 72,
		InterpModules: 856, DictKeysLayout: KeysSized, DictValuesItems: 0, InstanceDict: DictAtOffset, HeapTypeCachedKeys: Absent,
	},
	10: {
		RuntimeInterpretersHead: 32,
		InterpNext:              0, InterpThreadsHead: 8,
		TstateNext: 8, TstateInterp: 16, TstateThreadID: 176, TstateNativeThreadID: Absent,
		TstateFrame: 24, TstateCframe: Absent, CframeCurrentFrame: Absent, TstateCurrentFrame: Absent,
		FrameKind: FrameObjectKind, FrameCode: 32, FramePrevious: 24, FrameInstr: 96, InstrKind: InstrLastiUnits,
		FrameOwner: Absent, FrameIsEntry: Absent, OwnerShimMin: Absent, OwnerGenerator: Absent,
		CodeCode: 48, CodeAdaptive: Absent, CodeFirstLineNo: 40, CodeFilename: 104, CodeName: 112,
		CodeQualname: Absent, CodeLineTable: 120, CodeFirstTraceable: Absent, LineTable: Linetable310, CheckOffset: 36,
		ASCIIDataOffset: 48, CompactUnicodeData: 72,
		InterpModules: 856, DictKeysLayout: KeysSized, DictValuesItems: 0, InstanceDict: DictAtOffset, HeapTypeCachedKeys: Absent,
	},
	11: {
		RuntimeInterpretersHead: 40,
		InterpNext:              0, InterpThreadsHead: 16,
		TstateNext: 8, TstateInterp: 16, TstateThreadID: 152, TstateNativeThreadID: 160,
		TstateFrame: Absent, TstateCframe: 56, CframeCurrentFrame: 8, TstateCurrentFrame: Absent,
		FrameKind: InterpreterFrameKind, FrameCode: 32, FramePrevious: 48, FrameInstr: 56, InstrKind: InstrPrevPtr,
		FrameOwner: 69, FrameIsEntry: 68, OwnerShimMin: Absent, OwnerGenerator: 1,
		CodeCode: Absent, CodeAdaptive: 184, CodeFirstLineNo: 72, CodeFilename: 112, CodeName: 120,
		CodeQualname: 128, CodeLineTable: 136, CodeFirstTraceable: 168, LineTable: LocationTable, CheckOffset: 68,
		ASCIIDataOffset: 48, CompactUnicodeData: 72,
		InterpModules: 888, DictKeysLayout: KeysLog2, DictValuesItems: 0, InstanceDict: ValuesOrDict311, HeapTypeCachedKeys: 872,
	},
	12: {
		RuntimeInterpretersHead: 40,
		InterpNext:              0, InterpThreadsHead: 72,
		TstateNext: 8, TstateInterp: 16, TstateThreadID: 136, TstateNativeThreadID: 144,
		TstateFrame: Absent, TstateCframe: 56, CframeCurrentFrame: 0, TstateCurrentFrame: Absent,
		FrameKind: InterpreterFrameKind, FrameCode: 0, FramePrevious: 8, FrameInstr: 56, InstrKind: InstrPrevPtr,
		FrameOwner: 70, FrameIsEntry: Absent, OwnerShimMin: 3, OwnerGenerator: 1,
		CodeCode: Absent, CodeAdaptive: 192, CodeFirstLineNo: 68, CodeFilename: 112, CodeName: 120,
		CodeQualname: 128, CodeLineTable: 136, CodeFirstTraceable: 176, LineTable: LocationTable, CheckOffset: 64,
		ASCIIDataOffset: 40, CompactUnicodeData: 56,
		InterpModules: 944, DictKeysLayout: KeysLog2, DictValuesItems: 0, InstanceDict: TaggedDictOrValues, HeapTypeCachedKeys: 880, LongTagged: true,
	},
	13: {
		RuntimeInterpretersHead: 632,
		InterpNext:              7264, InterpThreadsHead: 7344,
		TstateNext: 8, TstateInterp: 16, TstateThreadID: 152, TstateNativeThreadID: 160,
		TstateFrame: Absent, TstateCframe: Absent, CframeCurrentFrame: Absent, TstateCurrentFrame: 72,
		FrameKind: InterpreterFrameKind, FrameCode: 0, FramePrevious: 8, FrameInstr: 56, InstrKind: InstrPtr,
		FrameOwner: 70, FrameIsEntry: Absent, OwnerShimMin: 3, OwnerGenerator: 1,
		CodeCode: Absent, CodeAdaptive: 200, CodeFirstLineNo: 68, CodeFilename: 112, CodeName: 120,
		CodeQualname: 128, CodeLineTable: 136, CodeFirstTraceable: 184, LineTable: LocationTable, CheckOffset: 64,
		ASCIIDataOffset: 40, CompactUnicodeData: 56,
		InterpModules: 7656, DictKeysLayout: KeysLog2, DictValuesItems: 8, InstanceDict: InlineValues, HeapTypeCachedKeys: 880, LongTagged: true,
	},
	14: {
		RuntimeInterpretersHead: 808,
		InterpNext:              7272, InterpThreadsHead: 7344,
		TstateNext: 8, TstateInterp: 16, TstateThreadID: 152, TstateNativeThreadID: 160,
		TstateFrame: Absent, TstateCframe: Absent, CframeCurrentFrame: Absent, TstateCurrentFrame: 72,
		FrameKind: InterpreterFrameKind, FrameCode: 0, FramePrevious: 8, FrameInstr: 56, InstrKind: InstrPtr,
		FrameOwner: 74, FrameIsEntry: Absent, OwnerShimMin: 3, OwnerGenerator: 1, TaggedExecutable: true,
		CodeCode: Absent, CodeAdaptive: 208, CodeFirstLineNo: 68, CodeFilename: 112, CodeName: 120,
		CodeQualname: 128, CodeLineTable: 136, CodeFirstTraceable: 192, LineTable: LocationTable, CheckOffset: 64,
		ASCIIDataOffset: 40, CompactUnicodeData: 56,
		InterpModules: 7688, DictKeysLayout: KeysLog2, DictValuesItems: 8, InstanceDict: InlineValues, HeapTypeCachedKeys: 880, LongTagged: true,
	},
}

// Offsets shared by every supported version: the PyObject header and the
// fixed start of PyBytesObject and PyASCIIObject did not move in 3.7–3.14.
const (
	obTypeOffset        = 8
	bytesSizeOffset     = 16
	bytesDataOffset     = 32
	unicodeLengthOffset = 16
	unicodeStateOffset  = 32
	// PyTypeObject's head did not move either: tp_basicsize, tp_itemsize,
	// tp_flags, tp_dictoffset.
	typeBasicSizeOffset  = 32
	typeItemSizeOffset   = 40
	typeFlagsOffset      = 168
	typeDictOffsetOffset = 288
	moduleDictOffset     = 16 // PyModuleObject.md_dict
	dictKeysOffset       = 32 // PyDictObject.ma_keys
	dictValuesOffset     = 40 // PyDictObject.ma_values
	longSizeOffset       = 16 // ob_size (≤3.11), lv_tag (3.12+)
	longDigitsOffset     = 24 // ob_digit
)

// OffsetsFor returns a copy of the row for v's minor version.
func OffsetsFor(v Version) (*Offsets, error) {
	if v.Major != 3 || v.Minor < 7 || v.Minor >= len(offsetsTable) {
		return nil, fmt.Errorf("unsupported Python %d.%d: bprof supports 3.7–3.14", v.Major, v.Minor)
	}
	o := offsetsTable[v.Minor]
	o.ObType = obTypeOffset
	o.BytesSize = bytesSizeOffset
	o.BytesData = bytesDataOffset
	o.UnicodeLength = unicodeLengthOffset
	o.UnicodeState = unicodeStateOffset
	o.TypeBasicSize = typeBasicSizeOffset
	o.TypeItemSize = typeItemSizeOffset
	o.TypeFlags = typeFlagsOffset
	o.TypeDictOffset = typeDictOffsetOffset
	o.ModuleDict = moduleDictOffset
	o.DictKeys = dictKeysOffset
	o.DictValues = dictValuesOffset
	o.LongSize = longSizeOffset
	o.LongDigits = longDigitsOffset
	return &o, nil
}
