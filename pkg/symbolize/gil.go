package symbolize

// GILWait reports whether a waiting thread with these frames is waiting for
// the GIL: it has a native frame of take_gil or of a CPython function that
// retakes the GIL through it (3.7 to 3.14). It needs the interpreter's
// symbols: a stripped interpreter's static take_gil has no name, and then
// the thread shows only as waiting.
func GILWait(frames []Frame) bool {
	for i := range frames {
		if frames[i].Kind != KindNative {
			continue
		}
		switch frames[i].Name {
		case "take_gil", "PyEval_RestoreThread", "_PyEval_ReloadThread", "_Py_HandlePending",
			"PyEval_AcquireThread", "PyGILState_Ensure":
			return true
		}
	}
	return false
}
