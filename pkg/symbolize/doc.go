// Package symbolize turns the addresses of a sampled stack into named
// frames: native frames through the ELF files a process maps
// (process.Cache), kernel frames through /proc/kallsyms, and, in
// python.go, Python frames read from the interpreter.
//
// Every symbolizer appends to a []Frame the caller passes in, one Frame per
// input, leaf first, and drops nothing: an address that cannot be named
// still yields a frame, named after its file and offset ("libfoo.so+0x1234")
// or as "[unknown]+0x..." when no mapping holds it.
//
// Return addresses (every address but the leaf) point after the call
// instruction, which may be the first byte of the next function; they are
// looked up at addr-1, while Frame.Addr keeps the address as sampled.
//
// Frames of one file share one *Module, so a pprof builder can dedupe
// mappings by pointer.
package symbolize
