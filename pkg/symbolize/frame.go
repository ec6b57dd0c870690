package symbolize

import "fmt"

// Kind tells what produced a frame.
type Kind uint8

const (
	KindNative Kind = iota // machine code in a mapped file (or anonymous memory)
	KindKernel             // kernel code
	KindPython             // a Python function, read from the interpreter
	KindPseudo             // a frame made by bprof, such as [lost]
)

func (k Kind) String() string {
	switch k {
	case KindNative:
		return "native"
	case KindKernel:
		return "kernel"
	case KindPython:
		return "python"
	case KindPseudo:
		return "pseudo"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Module is the file (or pseudo file) a frame is in: what becomes a pprof
// Mapping. Path is "[kernel.kallsyms]" for the kernel and "[unknown]" for
// addresses in no mapping. Modules are shared: compare them by pointer.
type Module struct {
	Path    string
	BuildID string // hex GNU build ID, "" when unknown
	Start   uint64 // runtime address range [Start, Limit)
	Limit   uint64
	Offset  uint64 // file offset mapped at Start
}

// Frame is one symbolized stack frame.
type Frame struct {
	Kind Kind
	// Name is the function. An unnamed native frame is called after its
	// file's base name and file offset ("libfoo.so+0x1234").
	Name      string
	File      string // source file where known (Python), else ""
	Line      int64
	StartLine int64
	Module    *Module // never nil for native and kernel frames
	Addr      uint64  // the runtime address (native, kernel); 0 for Python and pseudo frames
}

// unknownPython names a Python frame whose code object could not be read,
// or was no longer the one the walker saw.
const unknownPython = "[unknown python]"

// Unnamed reports whether f is a frame that could not be named this time
// and may be named at a later attempt: an address in no known mapping (a
// library loaded since the mappings were read), or a Python code object
// that could not be read or had changed.
func (f *Frame) Unnamed() bool {
	switch f.Kind {
	case KindNative:
		return f.Module != nil && f.Module.Path == "[unknown]"
	case KindPseudo:
		return f.Name == unknownPython
	}
	return false
}
