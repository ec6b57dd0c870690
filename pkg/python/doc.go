// Package python holds everything bprof knows about CPython's memory layout:
// which versions exist and how to tell them apart, the offsets of the fields a
// stack walker follows, the line-number tables, code objects, and the list of
// thread states of a running interpreter.
//
// The package reads a target through an io.ReaderAt whose offsets are the
// target's virtual addresses, and reads ELF files through debug/elf with the
// load bias the caller computed. It never attaches to, stops or signals a
// process; callers decide how memory is read.
//
// # Design
//
// A sample is taken in two halves. The BPF program (in the sampler) walks the
// frames of the current thread state following an Offsets row and records,
// per frame, a FrameRef: the code object's address, an instruction offset and
// a check value (8 immutable bytes of the code object). The symbolizer later
// calls ReadCode for each new code address, compares the check value to tell
// a live code object from a freed-and-reused address, and turns the
// instruction offset into a line with Line.
//
// Interpreter.Stack is the same walk in pure Go. It is the reference the BPF
// program follows and the thing the tests run against real interpreters, so
// the algorithm is written down once, in stack.go.
//
// Supported versions are CPython 3.7 to 3.14, default (GIL) x86-64 builds.
// Free-threaded builds (3.13t, 3.14t) use other layouts and are refused.
//
// Interpreter.ThreadNames reads threading's names of the threads
// (threading._active through sys.modules), following the dict, int and
// instance-attribute layouts of each version.
//
// Everything read from a target is bounded: string lengths, line tables,
// interpreter and thread lists, dict sizes and frame counts all have caps.
package python
