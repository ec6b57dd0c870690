package unwind

import (
	"bytes"
	"debug/elf"
	"testing"
)

func libc(t *testing.T) (*elf.File, *Table) {
	t.Helper()
	f := realFiles()[0]
	ef := f.open(t)
	tab, err := Parse(ef)
	if err != nil {
		t.Fatal(err)
	}
	return ef, tab
}

// TestLibcSignalTrampoline finds __restore_rt, where a signal handler
// returns to, and checks it is KindSignal. libc.so.6 has no .symtab, so
// it is found by its code: mov $15 (rt_sigreturn), %rax; syscall.
func TestLibcSignalTrampoline(t *testing.T) {
	ef, tab := libc(t)
	text := ef.Section(".text")
	code, err := text.Data()
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(code, []byte{0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05})
	if i < 0 {
		t.Fatal("no rt_sigreturn trampoline in .text")
	}
	restoreRT := text.Addr + uint64(i)
	// Unwinders look up return addresses less one: glibc starts the FDE
	// one byte early for that.
	for _, pc := range []uint64{restoreRT - 1, restoreRT, restoreRT + 8} {
		if row, _ := tab.Find(pc); row.Kind != KindSignal {
			t.Errorf("__restore_rt at %#x: %+v at %#x, want KindSignal", restoreRT, row, pc)
		}
	}
}

// TestLibcCloneIsOutermost checks that the child's side of clone, where a
// new thread starts, ends the walk.
func TestLibcCloneIsOutermost(t *testing.T) {
	ef, tab := libc(t)
	syms, err := ef.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Name != "clone" {
			continue
		}
		kinds := map[Kind]bool{}
		for pc := s.Value; pc < s.Value+s.Size; pc++ {
			row, _ := tab.Find(pc)
			kinds[row.Kind] = true
		}
		if !kinds[KindEnd] || !kinds[KindRSP] {
			t.Errorf("clone at %#x: kinds %v, want KindRSP (parent) and KindEnd (child)", s.Value, kinds)
		}
		return
	}
	t.Fatal("no clone in libc's dynamic symbols")
}
