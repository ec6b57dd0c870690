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

func TestKernel(t *testing.T) {
	testenv.RequireRoot(t)
	k, err := NewKernel()
	if err != nil {
		t.Fatal(err)
	}
	if k.syms != nil {
		t.Fatal("NewKernel read the symbols; they are read on first use")
	}
	addr, ok := k.load().Addr("schedule")
	if !ok {
		t.Fatal("no schedule in /proc/kallsyms")
	}
	frames := k.Symbolize([]uint64{addr + 4, addr + 8}, nil)
	for i, f := range frames {
		if f.Name != "schedule" {
			t.Errorf("frame %d = %q, want schedule", i, f.Name)
		}
	}
}
