package flamegraph

import (
	"fmt"
	"path"
	"strings"

	"github.com/google/pprof/profile"
)

// Kind is the kind of code a frame runs, which decides its colour.
type Kind uint8

// The frame kinds, told apart by the Location's Mapping.File (docs/CONVENTIONS.md).
const (
	Native Kind = iota // a frame in a mapped file, or in a profile without mappings
	Python             // Mapping.File "[python]"
	Kernel             // Mapping.File "[kernel.kallsyms]"
	OffCPU             // a "[bprof]" pseudo-frame named "[off-cpu: ...]"
	Pseudo             // any other "[bprof]" pseudo-frame ("[lost]", "[truncated]", ...)
	numKinds
)

var kindNames = [numKinds]string{"native", "Python", "kernel", "off-CPU wait", "pseudo"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Frame is one stack frame as shown: a function, and for Python frames the line
// executing. Frames that compare equal are drawn as one.
type Frame struct {
	Name string
	File string // Python: co_filename; native: the source file when known, else the mapped file
	Line int64  // Python frames only; 0 otherwise
	Kind Kind
}

// kernelSuffix marks kernel frames in folded text, as flamegraph.pl's --kernel does.
const kernelSuffix = "_[k]"

// Label is the frame as written in folded stacks and matched by Options.Focus
// and Options.Ignore: "qualname (file:line)" for Python frames, the name with
// "_[k]" appended for kernel frames, and the name for the others.
func (f Frame) Label() string {
	switch {
	case f.Kind == Python && f.File != "":
		return fmt.Sprintf("%s (%s:%d)", f.Name, f.File, f.Line)
	case f.Kind == Kernel:
		return f.Name + kernelSuffix
	}
	return f.Name
}

// Position is "file:line", "file" or "" for a tooltip.
func (f Frame) Position() string {
	switch {
	case f.File == "":
		return ""
	case f.Line > 0:
		return fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	return f.File
}

// mappingKind classifies a frame by the file of its mapping and its name.
func mappingKind(m *profile.Mapping, name string) Kind {
	if m == nil {
		return Native
	}
	switch m.File {
	case "[python]":
		return Python
	case "[kernel.kallsyms]":
		return Kernel
	case "[bprof]":
		if strings.HasPrefix(name, "[off-cpu") {
			return OffCPU
		}
		return Pseudo
	}
	return Native
}

// locationFrames appends the frames of loc, leaf first (innermost inlined call
// first, as pprof orders Location.Line).
func locationFrames(dst []Frame, loc *profile.Location) []Frame {
	if len(loc.Line) == 0 {
		name := fmt.Sprintf("0x%x", loc.Address)
		file := ""
		if m := loc.Mapping; m != nil && m.File != "" {
			file = m.File
			if loc.Address >= m.Start {
				name = fmt.Sprintf("%s+0x%x", path.Base(m.File), loc.Address-m.Start+m.Offset)
			}
		}
		return append(dst, Frame{Name: name, File: file, Kind: mappingKind(loc.Mapping, name)})
	}
	for _, ln := range loc.Line {
		f := Frame{Name: "?"}
		if fn := ln.Function; fn != nil {
			if fn.Name != "" {
				f.Name = fn.Name
			} else if fn.SystemName != "" {
				f.Name = fn.SystemName
			}
			f.File = fn.Filename
		}
		f.Kind = mappingKind(loc.Mapping, f.Name)
		switch {
		case f.Kind == Python:
			f.Line = ln.Line
		case f.File == "" && loc.Mapping != nil:
			f.File = loc.Mapping.File
		}
		if f.Kind != Python && f.Kind != Native {
			f.File = ""
		}
		dst = append(dst, f)
	}
	return dst
}
