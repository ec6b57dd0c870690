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
