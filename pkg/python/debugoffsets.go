package python

import (
	"encoding/binary"
	"fmt"
	"io"
)

// debugSection is one struct inside _Py_DebugOffsets: its name and the names
// of its uint64 members in order (the first is always "size").
type debugSection struct {
	name   string
	fields []string
}

// debugLayouts lists the members of _Py_DebugOffsets up to unicode_object
// (3.13) or debugger_support (3.14), per minor version, from CPython's
// Include/internal/pycore_runtime.h (3.13) and pycore_debug_offsets.h (3.14). The struct is stable only within a minor
// version. Read only.
var debugLayouts = map[int][]debugSection{
	13: {
		{"runtime_state", []string{"size", "finalizing", "interpreters_head"}},
		{"interpreter_state", []string{"size", "id", "next", "threads_head", "gc", "imports_modules",
			"sysdict", "builtins", "ceval_gil", "gil_runtime_state", "gil_runtime_state_enabled",
			"gil_runtime_state_locked", "gil_runtime_state_holder"}},
		{"thread_state", []string{"size", "prev", "next", "interp", "current_frame", "thread_id",
			"native_thread_id", "datastack_chunk", "status"}},
		{"interpreter_frame", []string{"size", "previous", "executable", "instr_ptr", "localsplus", "owner"}},
		{"code_object", []string{"size", "filename", "name", "qualname", "linetable", "firstlineno",
			"argcount", "localsplusnames", "localspluskinds", "co_code_adaptive"}},
		{"pyobject", []string{"size", "ob_type"}},
		{"type_object", []string{"size", "tp_name", "tp_repr", "tp_flags"}},
		{"tuple_object", []string{"size", "ob_item", "ob_size"}},
		{"list_object", []string{"size", "ob_item", "ob_size"}},
		{"dict_object", []string{"size", "ma_keys", "ma_values"}},
		{"float_object", []string{"size", "ob_fval"}},
		{"long_object", []string{"size", "lv_tag", "ob_digit"}},
		{"bytes_object", []string{"size", "ob_size", "ob_sval"}},
		{"unicode_object", []string{"size", "state", "length", "asciiobject_size"}},
	},
	14: {
		{"runtime_state", []string{"size", "finalizing", "interpreters_head"}},
		{"interpreter_state", []string{"size", "id", "next", "threads_head", "threads_main", "gc",
			"imports_modules", "sysdict", "builtins", "ceval_gil", "gil_runtime_state",
			"gil_runtime_state_enabled", "gil_runtime_state_locked", "gil_runtime_state_holder",
			"code_object_generation", "tlbc_generation"}},
		{"thread_state", []string{"size", "prev", "next", "interp", "current_frame", "thread_id",
			"native_thread_id", "datastack_chunk", "status"}},
		{"interpreter_frame", []string{"size", "previous", "executable", "instr_ptr", "localsplus", "owner",
			"stackpointer", "tlbc_index"}},
		{"code_object", []string{"size", "filename", "name", "qualname", "linetable", "firstlineno",
			"argcount", "localsplusnames", "localspluskinds", "co_code_adaptive", "co_tlbc"}},
		{"pyobject", []string{"size", "ob_type"}},
		{"type_object", []string{"size", "tp_name", "tp_repr", "tp_flags"}},
		{"tuple_object", []string{"size", "ob_item", "ob_size"}},
		{"list_object", []string{"size", "ob_item", "ob_size"}},
		{"set_object", []string{"size", "used", "table", "mask"}},
		{"dict_object", []string{"size", "ma_keys", "ma_values"}},
		{"float_object", []string{"size", "ob_fval"}},
		{"long_object", []string{"size", "lv_tag", "ob_digit"}},
		{"bytes_object", []string{"size", "ob_size", "ob_sval"}},
		{"unicode_object", []string{"size", "state", "length", "asciiobject_size"}},
		// PEP 768's fields (remote.go): the sections between are there
		// only to find them.
		{"gc", []string{"size", "collecting"}},
		{"gen_object", []string{"size", "gi_name", "gi_iframe", "gi_frame_state"}},
		{"llist_node", []string{"next", "prev"}},
		{"debugger_support", []string{"eval_breaker", "remote_debugger_support", "remote_debugging_enabled",
			"debugger_pending_call", "debugger_script_path", "debugger_script_path_size"}},
	},
}

// debugHeaderWords is cookie, version and free_threaded.
const debugHeaderWords = 3

// debugChecked maps a _Py_DebugOffsets member to the Offsets field holding
// the same fact. Read only.
var debugChecked = []struct {
	member string
	field  string
	get    func(*Offsets) int
}{
	{"runtime_state.interpreters_head", "RuntimeInterpretersHead", func(o *Offsets) int { return o.RuntimeInterpretersHead }},
	{"interpreter_state.next", "InterpNext", func(o *Offsets) int { return o.InterpNext }},
	{"interpreter_state.threads_head", "InterpThreadsHead", func(o *Offsets) int { return o.InterpThreadsHead }},
	{"interpreter_state.imports_modules", "InterpModules", func(o *Offsets) int { return o.InterpModules }},
	{"thread_state.next", "TstateNext", func(o *Offsets) int { return o.TstateNext }},
	{"thread_state.interp", "TstateInterp", func(o *Offsets) int { return o.TstateInterp }},
	{"thread_state.current_frame", "TstateCurrentFrame", func(o *Offsets) int { return o.TstateCurrentFrame }},
	{"thread_state.thread_id", "TstateThreadID", func(o *Offsets) int { return o.TstateThreadID }},
	{"thread_state.native_thread_id", "TstateNativeThreadID", func(o *Offsets) int { return o.TstateNativeThreadID }},
	{"interpreter_frame.previous", "FramePrevious", func(o *Offsets) int { return o.FramePrevious }},
	{"interpreter_frame.executable", "FrameCode", func(o *Offsets) int { return o.FrameCode }},
	{"interpreter_frame.instr_ptr", "FrameInstr", func(o *Offsets) int { return o.FrameInstr }},
	{"interpreter_frame.owner", "FrameOwner", func(o *Offsets) int { return o.FrameOwner }},
	{"code_object.filename", "CodeFilename", func(o *Offsets) int { return o.CodeFilename }},
	{"code_object.name", "CodeName", func(o *Offsets) int { return o.CodeName }},
	{"code_object.qualname", "CodeQualname", func(o *Offsets) int { return o.CodeQualname }},
	{"code_object.linetable", "CodeLineTable", func(o *Offsets) int { return o.CodeLineTable }},
	{"code_object.firstlineno", "CodeFirstLineNo", func(o *Offsets) int { return o.CodeFirstLineNo }},
	{"code_object.co_code_adaptive", "CodeAdaptive", func(o *Offsets) int { return o.CodeAdaptive }},
	{"pyobject.ob_type", "ObType", func(o *Offsets) int { return o.ObType }},
	{"type_object.tp_flags", "TypeFlags", func(o *Offsets) int { return o.TypeFlags }},
	{"dict_object.ma_keys", "DictKeys", func(o *Offsets) int { return o.DictKeys }},
	{"dict_object.ma_values", "DictValues", func(o *Offsets) int { return o.DictValues }},
	{"long_object.lv_tag", "LongSize", func(o *Offsets) int { return o.LongSize }},
	{"long_object.ob_digit", "LongDigits", func(o *Offsets) int { return o.LongDigits }},
	{"bytes_object.ob_size", "BytesSize", func(o *Offsets) int { return o.BytesSize }},
	{"bytes_object.ob_sval", "BytesData", func(o *Offsets) int { return o.BytesData }},
	{"unicode_object.state", "UnicodeState", func(o *Offsets) int { return o.UnicodeState }},
	{"unicode_object.length", "UnicodeLength", func(o *Offsets) int { return o.UnicodeLength }},
	{"unicode_object.asciiobject_size", "ASCIIDataOffset", func(o *Offsets) int { return o.ASCIIDataOffset }},
}

// DebugOffsets holds the members of a target's _Py_DebugOffsets, keyed
// "section.member" (e.g. "thread_state.current_frame").
type DebugOffsets struct {
	Version      Version
	FreeThreaded bool
	Fields       map[string]uint64
}

// ReadDebugOffsets reads _Py_DebugOffsets at the start of _PyRuntime
// (3.13+). The version in the header selects the layout.
func ReadDebugOffsets(mem io.ReaderAt, runtimeAddr uint64) (*DebugOffsets, error) {
	v, ft, err := ReadDebugVersion(mem, runtimeAddr)
	if err != nil {
		return nil, err
	}
	layout, ok := debugLayouts[v.Minor]
	if !ok || v.Major != 3 {
		return nil, fmt.Errorf("read _Py_DebugOffsets at %#x: no known layout for Python %d.%d", runtimeAddr, v.Major, v.Minor)
	}
	words := debugHeaderWords
	for _, s := range layout {
		words += len(s.fields)
	}
	buf := make([]byte, 8*words)
	if err := readFull(mem, runtimeAddr, buf); err != nil {
		return nil, fmt.Errorf("read _Py_DebugOffsets at %#x: %w", runtimeAddr, err)
	}
	d := &DebugOffsets{Version: v, FreeThreaded: ft, Fields: make(map[string]uint64, words)}
	w := debugHeaderWords
	for _, s := range layout {
		for _, f := range s.fields {
			d.Fields[s.name+"."+f] = binary.LittleEndian.Uint64(buf[8*w:])
			w++
		}
	}
	return d, nil
}

// CheckDebugOffsets compares every fact of o that the target's
// _Py_DebugOffsets (3.13+) also states, and returns an error naming the first
// field that differs. It also refuses free-threaded builds.
func CheckDebugOffsets(mem io.ReaderAt, runtimeAddr uint64, o *Offsets) error {
	d, err := ReadDebugOffsets(mem, runtimeAddr)
	if err != nil {
		return err
	}
	return d.Check(o)
}

// Check compares o with d; see CheckDebugOffsets.
func (d *DebugOffsets) Check(o *Offsets) error {
	if d.FreeThreaded {
		return fmt.Errorf("check _Py_DebugOffsets: Python %s is a free-threaded build, which bprof does not support", d.Version)
	}
	for _, c := range debugChecked {
		got, ok := d.Fields[c.member]
		if !ok {
			continue
		}
		if want := c.get(o); want < 0 || uint64(want) != got {
			return fmt.Errorf("check _Py_DebugOffsets of Python %s: %s (Offsets.%s) is %d in bprof's table but %d in the target",
				d.Version, c.member, c.field, want, got)
		}
	}
	return nil
}
