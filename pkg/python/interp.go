package python

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
)

// Caps on the lists walked in a target.
const (
	MaxInterpreters = 64
	MaxThreads      = 4096
)

// Interpreter is one CPython runtime in a process: the ELF file holding
// _PyRuntime (python3.X or libpython3.X.so) as loaded at some bias.
type Interpreter struct {
	Version
	Path        string
	RuntimeAddr uint64 // _PyRuntime in the target
	// CodeType is &PyCode_Type in the target, or 0 when the file lacks the
	// symbol; the walker uses it to drop frames that do not run a code
	// object (3.13+ entry frames hold None).
	CodeType uint64
	Offsets  *Offsets
}

// Thread is one PyThreadState.
type Thread struct {
	TState   uint64 // the PyThreadState's address
	ThreadID uint64 // thread_id: pthread_self(), which is the thread's fsbase
	NativeID uint64 // native_thread_id: the TID in the target's PID namespace (3.11+), else 0
}

// Find identifies the CPython interpreter in f, an ELF file loaded in the
// target at bias (runtime address = symbol value + bias), whose path as the
// target sees it is path. The version comes from Py_Version (3.11+), else the
// _Py_DebugOffsets header, else the file name. For 3.13+ the offsets are
// checked against the target's _Py_DebugOffsets. mem reads the target.
func Find(f *elf.File, path string, bias uint64, mem io.ReaderAt) (*Interpreter, error) {
	return FindWith(ReadFileSymbols(f), path, bias, mem)
}

// FileSymbols are the symbols Find needs from an interpreter's file, as file
// addresses, 0 when absent. They depend on the file alone: a caller that
// meets one file in many processes reads them once.
type FileSymbols struct {
	Runtime   uint64 // _PyRuntime
	PyVersion uint64 // Py_Version (3.11+)
	CodeType  uint64 // PyCode_Type
}

// ReadFileSymbols reads f's FileSymbols from .symtab, then .dynsym.
func ReadFileSymbols(f *elf.File) FileSymbols {
	syms := lookupSymbols(f, "_PyRuntime", "Py_Version", "PyCode_Type")
	return FileSymbols{Runtime: syms["_PyRuntime"], PyVersion: syms["Py_Version"], CodeType: syms["PyCode_Type"]}
}

// FindWith is Find with the file's symbols already read.
func FindWith(syms FileSymbols, path string, bias uint64, mem io.ReaderAt) (*Interpreter, error) {
	in, err := find(syms, path, bias, mem)
	if err != nil {
		return nil, fmt.Errorf("find python interpreter in %s: %w", path, err)
	}
	return in, nil
}

func find(syms FileSymbols, path string, bias uint64, mem io.ReaderAt) (*Interpreter, error) {
	runtime := syms.Runtime
	if runtime == 0 {
		// Before 3.7 there is no _PyRuntime: say which Python it is.
		if v, err := VersionFromFileName(path); err == nil {
			if _, err := OffsetsFor(v); err != nil {
				return nil, err
			}
		}
		return nil, errors.New("no _PyRuntime symbol")
	}
	in := &Interpreter{Path: path, RuntimeAddr: runtime + bias}
	if syms.CodeType != 0 {
		in.CodeType = syms.CodeType + bias
	}

	var err error
	nameVersion, nameErr := VersionFromFileName(path)
	switch dv, free, derr := ReadDebugVersion(mem, in.RuntimeAddr); {
	case derr == nil && free:
		return nil, fmt.Errorf("python %s is a free-threaded build, which bprof does not support", dv)
	case derr == nil:
		in.Version = dv
	case syms.PyVersion != 0:
		if in.Version, err = ReadPyVersion(mem, syms.PyVersion+bias); err != nil {
			return nil, err
		}
	case nameErr == nil:
		in.Version = nameVersion
	default:
		return nil, fmt.Errorf("no Py_Version, no _Py_DebugOffsets and %w", nameErr)
	}
	if nameErr == nil && nameVersion.Minor != in.Version.Minor {
		return nil, fmt.Errorf("file name says Python %d.%d but memory says %s", nameVersion.Major, nameVersion.Minor, in.Version)
	}
	if in.Offsets, err = OffsetsFor(in.Version); err != nil {
		return nil, err
	}
	if in.Version.AtLeast(3, 13) {
		if err := CheckDebugOffsets(mem, in.RuntimeAddr, in.Offsets); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// lookupSymbols returns the values of the named symbols from .symtab, then
// .dynsym.
func lookupSymbols(f *elf.File, names ...string) map[string]uint64 {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	found := make(map[string]uint64, len(names))
	for _, load := range []func() ([]elf.Symbol, error){f.Symbols, f.DynamicSymbols} {
		syms, _ := load()
		for _, s := range syms {
			if want[s.Name] && s.Value != 0 && s.Section != elf.SHN_UNDEF {
				if _, dup := found[s.Name]; !dup {
					found[s.Name] = s.Value
				}
			}
		}
	}
	return found
}

// Threads lists the thread states of every interpreter of the runtime,
// newest first, at most MaxThreads in all. The lists change under a running
// target; a read that fails returns the threads found so far with the error.
func (in *Interpreter) Threads(mem io.ReaderAt) ([]Thread, error) {
	o := in.Offsets
	var threads []Thread
	interp, err := readU64(mem, at(in.RuntimeAddr, o.RuntimeInterpretersHead))
	if err != nil {
		return nil, fmt.Errorf("read interpreters of _PyRuntime at %#x: %w", in.RuntimeAddr, err)
	}
	seen := map[uint64]bool{}
	for n := 0; interp != 0 && n < MaxInterpreters && !seen[interp]; n++ {
		seen[interp] = true
		ts, err := readU64(mem, at(interp, o.InterpThreadsHead))
		if err != nil {
			return threads, fmt.Errorf("read thread states of interpreter at %#x: %w", interp, err)
		}
		for ts != 0 && len(threads) < MaxThreads && !seen[ts] {
			seen[ts] = true
			th, next, err := readThread(mem, o, ts)
			if err != nil {
				return threads, fmt.Errorf("read thread state at %#x: %w", ts, err)
			}
			threads = append(threads, th)
			ts = next
		}
		if interp, err = readU64(mem, at(interp, o.InterpNext)); err != nil {
			return threads, fmt.Errorf("read next interpreter: %w", err)
		}
	}
	return threads, nil
}

func readThread(mem io.ReaderAt, o *Offsets, ts uint64) (th Thread, next uint64, err error) {
	th.TState = ts
	if th.ThreadID, err = readU64(mem, at(ts, o.TstateThreadID)); err != nil {
		return th, 0, err
	}
	if o.TstateNativeThreadID != Absent {
		if th.NativeID, err = readU64(mem, at(ts, o.TstateNativeThreadID)); err != nil {
			return th, 0, err
		}
	}
	next, err = readU64(mem, at(ts, o.TstateNext))
	return th, next, err
}
