package process

import (
	"strings"
	"testing"

	"github.com/bprof/bprof/internal/testenv"
)

const sampleKallsyms = `ffffffff81000000 T _stext
ffffffff81000000 t _text
ffffffff81001000 T do_syscall_64
ffffffff810011f0 t __pfx_helper
ffffffff81001200 t helper
ffffffff81001300 T __pfx_padded_alias
ffffffff81001300 t named_here
ffffffff81001310 T padded_alias
ffffffff82000000 D some_data
ffffffffc0a01000 t nf_hook	[nf_tables]
ffffffffc0a01100 T nft_do_chain	[nf_tables]
`

func TestParseKallsyms(t *testing.T) {
	k, err := ParseKallsyms(strings.NewReader(sampleKallsyms))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr   uint64
		name   string
		off    uint64
		module string
		ok     bool
	}{
		{0xffffffff80ffffff, "", 0, "", false},
		{0xffffffff81000000, "_stext", 0, "", true},
		{0xffffffff81001010, "do_syscall_64", 0x10, "", true},
		{0xffffffff810011f4, "helper", 4, "", true}, // in a function's padding: the function's
		{0xffffffff81001200, "helper", 0, "", true},
		{0xffffffff81001302, "named_here", 2, "", true}, // a padding symbol never hides a named one
		{0xffffffff81001310, "padded_alias", 0, "", true},
		{0xffffffffc0a01004, "nf_hook", 4, "nf_tables", true},
		{0xffffffffc0a01100, "nft_do_chain", 0, "nf_tables", true},
	} {
		name, off, mod, ok := k.Lookup(tc.addr)
		if name != tc.name || off != tc.off || mod != tc.module || ok != tc.ok {
			t.Errorf("Lookup(%#x) = %q, %#x, %q, %v; want %q, %#x, %q, %v",
				tc.addr, name, off, mod, ok, tc.name, tc.off, tc.module, tc.ok)
		}
	}
	if k.Len() != 8 {
		t.Errorf("Len = %d, want 8 text symbols", k.Len())
	}
	if a, ok := k.Addr("do_syscall_64"); !ok || a != 0xffffffff81001000 {
		t.Errorf("Addr(do_syscall_64) = %#x, %v", a, ok)
	}
}

func TestParseKallsymsErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"restricted", "0000000000000000 T _stext\n0000000000000000 T schedule\n", "run as root"},
		{"empty", "", "no symbols"},
		{"bad address", "xyz T a\n", "bad address"},
		{"missing name", "ffffffff81000000 T\n", "want ADDRESS TYPE NAME"},
		{"bad module", "ffffffff81000000 t a\tnf_tables\n", "bad module"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKallsyms(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestReadKallsyms(t *testing.T) {
	testenv.RequireRoot(t)
	k, err := ReadKallsyms()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"schedule", "do_syscall_64"} {
		addr, ok := k.Addr(name)
		if !ok {
			t.Errorf("no %s in /proc/kallsyms", name)
			continue
		}
		if got, off, mod, ok := k.Lookup(addr + 1); !ok || got != name || off != 1 || mod != "" {
			t.Errorf("Lookup(%s+1) = %q, %d, %q, %v", name, got, off, mod, ok)
		}
	}
}

func TestCheckKallsymsLine(t *testing.T) {
	for _, tt := range []struct {
		line string
		ok   bool
	}{
		{"ffffffff81000000 T _stext\n", true},
		{"ffffffffc0a01000 t foo\t[mod]\n", true},
		{"0000000000000000 T _stext\n", false},
		{"ffffffff81000000 T\n", false},
		{"xyz T _stext\n", false},
		{"", false},
	} {
		if err := checkKallsymsLine(tt.line); (err == nil) != tt.ok {
			t.Errorf("checkKallsymsLine(%q) = %v, want ok %v", tt.line, err, tt.ok)
		}
	}
}
