// Package unwind builds the compact unwind tables bprof's BPF program uses
// to walk native user stacks of x86-64 code built without frame pointers.
//
// A table is made per ELF file from its DWARF call frame information
// (.eh_frame, or .debug_frame when the file has no .eh_frame). The
// frame-description entries (FDEs) are interpreted here, in user space, into
// one flat list of rows sorted by address: from a row's PC up to the next
// row's, the row says how to find the canonical frame address (CFA, the
// caller's rsp) and where the caller's rbp was saved. The return address is
// always at CFA-8 on x86-64; a rule that puts it elsewhere, or a CFA rule the
// kernel side cannot evaluate (another register as base, a DWARF expression
// other than the PLT one), becomes KindUnsupported, and the BPF program falls
// back to frame pointers there. Nothing is guessed.
//
// The interpreter tracks only what a row depends on: the CFA rule and the
// rules of rbp, rsp and the return address. State is a small value type, so
// DW_CFA_remember_state copies it onto a stack the parser reuses, and no
// per-row map or per-register slice is allocated. Every allocation is bounded
// by the size of the input, every step of the interpreter consumes input,
// and malformed data gives an error (a *FormatError with the section
// offset), never a panic.
//
// Parsing costs time and memory linear in the section size: libpython3.11's
// 340 KB .eh_frame (74,000 rows) takes about 6 ms and 4.5 MB of
// allocations, the section's bytes included.
//
// The CFA interpreter is bprof's own. golang.org/x/debug's DWARF frame code
// served that repository's own debugger and is not kept as a library, and delve's
// pkg/dwarf/frame is part of the delve module (importing it adds delve and its
// dependencies to go.mod) and is built to evaluate one frame at a time, not
// to produce a flat table; neither knows about the PLT expression or the
// kernel's limits. The DWARF 5 specification (section 6.4) and the Linux
// Standard Base description of .eh_frame are the references.
package unwind
