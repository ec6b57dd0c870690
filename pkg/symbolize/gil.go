package symbolize

import "strings"

// gilFunctions are CPython's functions that wait for the GIL, or call the one
// that does (take_gil, static everywhere) on every path into it: a thread
// coming back from a blocking call (PyEval_RestoreThread, 3.13+'s
// _PyThreadState_Attach), C code taking the GIL (PyGILState_Ensure,
// PyEval_AcquireThread), and the eval loop giving it up on request and taking
// it back (_Py_HandlePending in 3.12-3.14, _PyEval_ReloadThread).
var gilFunctions = []string{
	"take_gil", "PyEval_RestoreThread", "_PyThreadState_Attach", "PyEval_AcquireThread",
	"PyGILState_Ensure", "PyEval_AcquireLock", "_PyEval_ReloadThread", "_Py_HandlePending",
	"_PyEval_AcquireLock",
}

// GILWait reports whether a stack (leaf first), taken while its thread was
// off the CPU, waits for the GIL: one of the functions above stands between
// the leaf and the innermost Python frame. Debian strips its interpreters to
// their dynamic symbols; there the exported entry points still name the wait
// (PyEval_RestoreThread, PyGILState_Ensure), but a wait inside the eval loop's
// own hand-off, which calls only static functions, is not recognised.
func GILWait(frames []Frame) bool {
	for i := range frames {
		f := &frames[i]
		if f.Kind == KindPython {
			return false
		}
		if f.Kind != KindNative {
			continue
		}
		name := strings.TrimSuffix(f.Name, ".cold")
		for _, g := range gilFunctions {
			if name == g || strings.HasPrefix(name, g+".") {
				return true
			}
		}
	}
	return false
}
