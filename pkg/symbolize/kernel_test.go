package symbolize

import (
	"strings"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/process"
)

func TestKernelFrom(t *testing.T) {
	syms, err := process.ParseKallsyms(strings.NewReader(`ffffffff81000000 T _stext
ffffffff81001000 T do_syscall_64
ffffffff81002000 T schedule
ffffffffc0a01000 t nft_do_chain	[nf_tables]
`))
	if err != nil {
		t.Fatal(err)
	}
	k := NewKernelFrom(syms)
	addrs := []uint64{0xffffffff81001010, 0xffffffff81002000, 0xffffffffc0a01010, 0x1000}
	want := []string{"do_syscall_64", "do_syscall_64", "nft_do_chain [nf_tables]", "[kernel]+0x1000"}
	frames := k.Symbolize(addrs, nil)
	if len(frames) != len(addrs) {
		t.Fatalf("got %d frames, want %d", len(frames), len(addrs))
	}
	for i, f := range frames {
		if f.Name != want[i] || f.Addr != addrs[i] || f.Kind != KindKernel || f.Module != frames[0].Module || f.Module.Path != "[kernel.kallsyms]" {
			t.Errorf("frame %d = %+v, want %q at %#x in the shared [kernel.kallsyms]", i, f, want[i], addrs[i])
		}
	}
}

// NewKernel names frames by asking the kernel, and loads nothing before
// the first frame to name.
func TestKernel(t *testing.T) {
	testenv.RequireRoot(t)
	k, err := NewKernel()
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if k.res != nil || k.syms != nil {
		t.Fatal("NewKernel loaded its lookup; it is loaded on first use")
	}
	syms, err := process.ReadKallsyms()
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := syms.Addr("schedule")
	if !ok {
		t.Fatal("no schedule in /proc/kallsyms")
	}
	// A leaf at the function's start, a return address inside it, and an
	// address no symbol holds.
	frames := k.Symbolize([]uint64{addr, addr + 8, 0x1000}, nil)
	want := []string{"schedule", "schedule", "[kernel]+0x1000"}
	for i, f := range frames {
		if f.Name != want[i] {
			t.Errorf("frame %d = %q, want %q", i, f.Name, want[i])
		}
	}
	if k.res == nil {
		t.Error("frames were named from /proc/kallsyms: the kernel's own lookup did not load")
	}
	if m := frames[0].Module; addr < m.Start || addr >= m.Limit {
		t.Errorf("kernel mapping [%#x, %#x) does not hold %#x", m.Start, m.Limit, addr)
	}
	// Named again from what the first call found.
	if again := k.Symbolize([]uint64{addr + 8}, nil); again[0].Name != "schedule" {
		t.Errorf("named again: %q, want schedule", again[0].Name)
	}
}
