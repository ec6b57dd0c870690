package ksym

import (
	"testing"

	"github.com/bprof/bprof/internal/testenv"
	"github.com/bprof/bprof/pkg/process"
)

// The kernel's lookup names what /proc/kallsyms says is there.
func TestNamesMatchKallsyms(t *testing.T) {
	testenv.RequireRoot(t)
	r, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	syms, err := process.ReadKallsyms()
	if err != nil {
		t.Fatal(err)
	}
	var addrs []uint64
	var want []string
	for _, name := range []string{"schedule", "do_syscall_64", "__x64_sys_futex", "ksys_read", "hrtimer_interrupt", "entry_SYSCALL_64"} {
		a, ok := syms.Addr(name)
		if !ok {
			testenv.Skip(t, "no "+name+" in /proc/kallsyms")
		}
		// Inside the function, as a return address is, and at its start.
		addrs = append(addrs, a+1, a)
		want = append(want, name, name)
	}
	// Far more than a batch, spread over the kernel's text: whatever
	// symbol kallsyms puts at or below each (aliases aside), the kernel
	// names. (Past _etext, kallsyms has no sizes to say an address is in
	// no function; the kernel does.)
	lo, _ := syms.Bounds()
	hi, ok := syms.Addr("_etext")
	if !ok {
		testenv.Skip(t, "no _etext in /proc/kallsyms")
	}
	step := (hi - lo) / 500
	for a := lo + 1; a < hi && len(addrs) < 500; a += step {
		name, _, module, ok := syms.Lookup(a)
		if !ok {
			continue
		}
		if module != "" {
			name += " [" + module + "]"
		}
		addrs = append(addrs, a)
		want = append(want, name)
	}
	addrs = append(addrs, 0x1000) // user space: no symbol
	want = append(want, "")

	names := make([]string, len(addrs))
	if err := r.Names(addrs, names); err != nil {
		t.Fatal(err)
	}
	differ := 0
	for i := range addrs {
		if names[i] == want[i] {
			continue
		}
		// Two symbols at one address: kallsyms and the kernel may pick
		// different aliases. Allowed only when kallsyms has the kernel's
		// name at the same address.
		if a, ok := syms.Addr(names[i]); ok {
			if b, ok := syms.Addr(want[i]); ok && a == b {
				continue
			}
		}
		differ++
		if i < 12 || differ <= 5 {
			t.Errorf("%#x: kernel names %q, /proc/kallsyms %q", addrs[i], names[i], want[i])
		}
	}
	if differ > 0 {
		t.Errorf("%d of %d addresses named differently", differ, len(addrs))
	}
}

func TestNamesWantsOneNamePerAddress(t *testing.T) {
	testenv.RequireRoot(t)
	r, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Names([]uint64{1, 2}, make([]string, 1)); err == nil {
		t.Error("Names took 2 addresses and 1 name")
	}
}
