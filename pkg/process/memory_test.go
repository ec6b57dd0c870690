package process

import (
	"bytes"
	"debug/elf"
	"os"
	"testing"
	"unsafe"

	"github.com/bprof/bprof/internal/testenv"
)

func TestMemorySelf(t *testing.T) {
	testenv.RequireRoot(t)
	var word uint64 = 0x0102030405060708
	buf := []byte("hello, memory")
	for _, fallback := range []bool{false, true} {
		mem := NewMemory(os.Getpid())
		mem.fallback = fallback
		if v, err := mem.Uint64(uint64(uintptr(unsafe.Pointer(&word)))); err != nil || v != word {
			t.Errorf("fallback %v: Uint64 = %#x, %v", fallback, v, err)
		}
		got := make([]byte, len(buf))
		if n, err := mem.ReadAt(got, int64(uintptr(unsafe.Pointer(&buf[0])))); err != nil || n != len(buf) || string(got) != string(buf) {
			t.Errorf("fallback %v: ReadAt = %d, %q, %v", fallback, n, got, err)
		}
		if _, err := mem.Uint32(8); err == nil {
			t.Errorf("fallback %v: read at address 8: no error", fallback)
		}
		if _, err := mem.ReadAt(got, -1); err == nil {
			t.Errorf("fallback %v: read at a negative address: no error", fallback)
		}
		if err := mem.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestReadVDSO(t *testing.T) {
	img, err := ReadVDSO()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("the vDSO image is not ELF: %v", err)
	}
	if f.Section(".eh_frame") == nil {
		t.Errorf("the vDSO has no .eh_frame")
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range syms {
		found = found || s.Name == "__vdso_clock_gettime"
	}
	if !found {
		t.Errorf("no __vdso_clock_gettime among the vDSO's %d symbols", len(syms))
	}
}
