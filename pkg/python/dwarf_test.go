package python

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
)

// dwarfCheck is one Offsets cell and the gdb expression giving it, for the
// minor versions from..to.
type dwarfCheck struct {
	field    string
	from, to int
	expr     string
	get      func(*Offsets) int
}

func off(typ, member string) string { return fmt.Sprintf("(long)&((%s*)0)->%s", typ, member) }

var dwarfChecks = []dwarfCheck{
	{"RuntimeInterpretersHead", 7, 14, off("struct pyruntimestate", "interpreters.head"), func(o *Offsets) int { return o.RuntimeInterpretersHead }},
	{"InterpNext", 7, 14, off("PyInterpreterState", "next"), func(o *Offsets) int { return o.InterpNext }},
	{"InterpThreadsHead", 7, 10, off("PyInterpreterState", "tstate_head"), func(o *Offsets) int { return o.InterpThreadsHead }},
	{"InterpThreadsHead", 11, 14, off("PyInterpreterState", "threads.head"), func(o *Offsets) int { return o.InterpThreadsHead }},
	{"TstateNext", 7, 14, off("PyThreadState", "next"), func(o *Offsets) int { return o.TstateNext }},
	{"TstateInterp", 7, 14, off("PyThreadState", "interp"), func(o *Offsets) int { return o.TstateInterp }},
	{"TstateThreadID", 7, 14, off("PyThreadState", "thread_id"), func(o *Offsets) int { return o.TstateThreadID }},
	{"TstateNativeThreadID", 11, 14, off("PyThreadState", "native_thread_id"), func(o *Offsets) int { return o.TstateNativeThreadID }},
	{"TstateFrame", 7, 10, off("PyThreadState", "frame"), func(o *Offsets) int { return o.TstateFrame }},
	{"TstateCframe", 11, 12, off("PyThreadState", "cframe"), func(o *Offsets) int { return o.TstateCframe }},
	{"CframeCurrentFrame", 11, 12, off("_PyCFrame", "current_frame"), func(o *Offsets) int { return o.CframeCurrentFrame }},
	{"TstateCurrentFrame", 13, 14, off("PyThreadState", "current_frame"), func(o *Offsets) int { return o.TstateCurrentFrame }},
	{"FrameCode", 7, 10, off("PyFrameObject", "f_code"), func(o *Offsets) int { return o.FrameCode }},
	{"FrameCode", 11, 12, off("struct _PyInterpreterFrame", "f_code"), func(o *Offsets) int { return o.FrameCode }},
	{"FrameCode", 13, 14, off("struct _PyInterpreterFrame", "f_executable"), func(o *Offsets) int { return o.FrameCode }},
	{"FramePrevious", 7, 10, off("PyFrameObject", "f_back"), func(o *Offsets) int { return o.FramePrevious }},
	{"FramePrevious", 11, 14, off("struct _PyInterpreterFrame", "previous"), func(o *Offsets) int { return o.FramePrevious }},
	{"FrameInstr", 7, 10, off("PyFrameObject", "f_lasti"), func(o *Offsets) int { return o.FrameInstr }},
	{"FrameInstr", 11, 12, off("struct _PyInterpreterFrame", "prev_instr"), func(o *Offsets) int { return o.FrameInstr }},
	{"FrameInstr", 13, 14, off("struct _PyInterpreterFrame", "instr_ptr"), func(o *Offsets) int { return o.FrameInstr }},
	{"FrameOwner", 11, 14, off("struct _PyInterpreterFrame", "owner"), func(o *Offsets) int { return o.FrameOwner }},
	{"FrameIsEntry", 11, 11, off("struct _PyInterpreterFrame", "is_entry"), func(o *Offsets) int { return o.FrameIsEntry }},
	{"CodeCode", 7, 10, off("PyCodeObject", "co_code"), func(o *Offsets) int { return o.CodeCode }},
	{"CodeAdaptive", 11, 14, "(long)PyCode_Type.tp_basicsize", func(o *Offsets) int { return o.CodeAdaptive }},
	{"CodeFirstLineNo", 7, 14, off("PyCodeObject", "co_firstlineno"), func(o *Offsets) int { return o.CodeFirstLineNo }},
	{"CodeFilename", 7, 14, off("PyCodeObject", "co_filename"), func(o *Offsets) int { return o.CodeFilename }},
	{"CodeName", 7, 14, off("PyCodeObject", "co_name"), func(o *Offsets) int { return o.CodeName }},
	{"CodeQualname", 11, 14, off("PyCodeObject", "co_qualname"), func(o *Offsets) int { return o.CodeQualname }},
	{"CodeLineTable", 7, 9, off("PyCodeObject", "co_lnotab"), func(o *Offsets) int { return o.CodeLineTable }},
	{"CodeLineTable", 10, 14, off("PyCodeObject", "co_linetable"), func(o *Offsets) int { return o.CodeLineTable }},
	{"CodeFirstTraceable", 11, 14, off("PyCodeObject", "_co_firsttraceable"), func(o *Offsets) int { return o.CodeFirstTraceable }},
	{"CheckOffset", 7, 10, off("PyCodeObject", "co_flags"), func(o *Offsets) int { return o.CheckOffset }},
	{"CheckOffset", 11, 14, off("PyCodeObject", "co_stacksize"), func(o *Offsets) int { return o.CheckOffset }},
	{"ObType", 7, 14, off("PyObject", "ob_type"), func(o *Offsets) int { return o.ObType }},
	{"BytesSize", 7, 14, off("PyBytesObject", "ob_base.ob_size"), func(o *Offsets) int { return o.BytesSize }},
	{"BytesData", 7, 14, off("PyBytesObject", "ob_sval"), func(o *Offsets) int { return o.BytesData }},
	{"UnicodeLength", 7, 14, off("PyASCIIObject", "length"), func(o *Offsets) int { return o.UnicodeLength }},
	{"UnicodeState", 7, 14, off("PyASCIIObject", "state"), func(o *Offsets) int { return o.UnicodeState }},
	{"ASCIIDataOffset", 7, 14, "(long)sizeof(PyASCIIObject)", func(o *Offsets) int { return o.ASCIIDataOffset }},
	{"InterpModules", 7, 11, off("PyInterpreterState", "modules"), func(o *Offsets) int { return o.InterpModules }},
	{"InterpModules", 12, 14, off("PyInterpreterState", "imports.modules"), func(o *Offsets) int { return o.InterpModules }},
	{"DictValuesItems", 11, 14, off("struct _dictvalues", "values"), func(o *Offsets) int { return o.DictValuesItems }},
	{"HeapTypeCachedKeys", 11, 14, off("PyHeapTypeObject", "ht_cached_keys"), func(o *Offsets) int { return o.HeapTypeCachedKeys }},
	{"TypeBasicSize", 7, 14, off("PyTypeObject", "tp_basicsize"), func(o *Offsets) int { return o.TypeBasicSize }},
	{"TypeItemSize", 7, 14, off("PyTypeObject", "tp_itemsize"), func(o *Offsets) int { return o.TypeItemSize }},
	{"TypeFlags", 7, 14, off("PyTypeObject", "tp_flags"), func(o *Offsets) int { return o.TypeFlags }},
	{"TypeDictOffset", 7, 14, off("PyTypeObject", "tp_dictoffset"), func(o *Offsets) int { return o.TypeDictOffset }},
	{"ModuleDict", 7, 14, off("PyModuleObject", "md_dict"), func(o *Offsets) int { return o.ModuleDict }},
	{"DictKeys", 7, 14, off("PyDictObject", "ma_keys"), func(o *Offsets) int { return o.DictKeys }},
	{"DictValues", 7, 14, off("PyDictObject", "ma_values"), func(o *Offsets) int { return o.DictValues }},
	{"LongSize", 7, 11, off("PyLongObject", "ob_base.ob_size"), func(o *Offsets) int { return o.LongSize }},
	{"LongSize", 12, 14, off("PyLongObject", "long_value.lv_tag"), func(o *Offsets) int { return o.LongSize }},
	{"LongDigits", 7, 11, off("PyLongObject", "ob_digit"), func(o *Offsets) int { return o.LongDigits }},
	{"LongDigits", 12, 14, off("PyLongObject", "long_value.ob_digit"), func(o *Offsets) int { return o.LongDigits }},
	{"CompactUnicodeData", 7, 14, "(long)sizeof(PyCompactUnicodeObject)", func(o *Offsets) int { return o.CompactUnicodeData }},
}

// TestOffsetsDWARF compares every cell of the table with the DWARF of the
// pyenv builds (shared libpython with debug info), through gdb.
func TestOffsetsDWARF(t *testing.T) {
	gdb := testenv.RequireCommand(t, "gdb")
	ran := 0
	for _, py := range findInterpreters(t) {
		libs, _ := filepath.Glob(filepath.Join(filepath.Dir(py.path), "..", "lib", "libpython3.*.so.1.0"))
		if len(libs) == 0 {
			continue
		}
		ran++
		t.Run(libs[0], func(t *testing.T) {
			o, err := OffsetsFor(py.version)
			if err != nil {
				t.Fatal(err)
			}
			var checks []dwarfCheck
			args := []string{"-batch", "-nx"}
			for _, c := range dwarfChecks {
				if py.version.Minor >= c.from && py.version.Minor <= c.to {
					checks = append(checks, c)
					args = append(args, "-ex", "print "+c.expr)
				}
			}
			out, err := exec.Command(gdb, append(args, libs[0])...).CombinedOutput()
			if err != nil {
				t.Fatalf("gdb: %v\n%s", err, out)
			}
			var values []int
			for _, line := range strings.Split(string(out), "\n") {
				if !strings.HasPrefix(line, "$") {
					continue
				}
				fields := strings.Fields(line)
				v, err := strconv.Atoi(fields[len(fields)-1])
				if err != nil {
					t.Fatalf("gdb line %q: %v", line, err)
				}
				values = append(values, v)
			}
			if len(values) != len(checks) {
				t.Fatalf("gdb printed %d values for %d expressions:\n%s", len(values), len(checks), out)
			}
			for i, c := range checks {
				if got := c.get(o); got != values[i] {
					t.Errorf("3.%d %s = %d, DWARF says %s = %d", py.version.Minor, c.field, got, c.expr, values[i])
				}
			}
		})
	}
	if ran == 0 {
		testenv.Skip(t, "no pyenv libpython with DWARF found")
	}
}
