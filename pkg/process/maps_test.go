package process

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

const sampleMaps = `55d0c0a00000-55d0c0a28000 r--p 00000000 fe:00 9968212                    /usr/bin/python3.11
55d0c0a28000-55d0c0d0e000 r-xp 00028000 fe:00 9968212                    /usr/bin/python3.11
7f1c8a000000-7f1c8a021000 rw-p 00000000 00:00 0 
7f1c8a400000-7f1c8a401000 r-xp 00001000 103:02 1234                       /opt/my app/lib foo.so (deleted)
7ffd1a9e0000-7ffd1aa01000 rw-p 00000000 00:00 0                          [stack]
7ffd1abf8000-7ffd1abfa000 r-xp 00000000 00:00 0                          [vdso]
7f1c8a500000-7f1c8a600000 rw-p 00000000 00:00 0                          [anon:python arena]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
`

func TestParseMaps(t *testing.T) {
	ms, err := ParseMaps(strings.NewReader(sampleMaps))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		m                   Mapping
		exec, anon, deleted bool
	}{
		{Mapping{0x55d0c0a00000, 0x55d0c0a28000, 0, "r--p", 0xfe, 0, 9968212, "/usr/bin/python3.11"}, false, false, false},
		{Mapping{0x55d0c0a28000, 0x55d0c0d0e000, 0x28000, "r-xp", 0xfe, 0, 9968212, "/usr/bin/python3.11"}, true, false, false},
		{Mapping{0x7f1c8a000000, 0x7f1c8a021000, 0, "rw-p", 0, 0, 0, ""}, false, true, false},
		{Mapping{0x7f1c8a400000, 0x7f1c8a401000, 0x1000, "r-xp", 0x103, 2, 1234, "/opt/my app/lib foo.so (deleted)"}, true, false, true},
		{Mapping{0x7ffd1a9e0000, 0x7ffd1aa01000, 0, "rw-p", 0, 0, 0, "[stack]"}, false, true, false},
		{Mapping{0x7ffd1abf8000, 0x7ffd1abfa000, 0, "r-xp", 0, 0, 0, "[vdso]"}, true, true, false},
		{Mapping{0x7f1c8a500000, 0x7f1c8a600000, 0, "rw-p", 0, 0, 0, "[anon:python arena]"}, false, true, false},
		{Mapping{0xffffffffff600000, 0xffffffffff601000, 0, "--xp", 0, 0, 0, "[vsyscall]"}, true, true, false},
	}
	if len(ms) != len(want) {
		t.Fatalf("got %d mappings, want %d", len(ms), len(want))
	}
	for i, w := range want {
		m := ms[i]
		if !reflect.DeepEqual(m, w.m) {
			t.Errorf("line %d: got %+v, want %+v", i+1, m, w.m)
		}
		if m.Executable() != w.exec || m.Anonymous() != w.anon || m.Deleted() != w.deleted {
			t.Errorf("line %d: exec %v anon %v deleted %v, want %v %v %v", i+1,
				m.Executable(), m.Anonymous(), m.Deleted(), w.exec, w.anon, w.deleted)
		}
	}
	if got := ms[3].FilePath(); got != "/opt/my app/lib foo.so" {
		t.Errorf("FilePath = %q", got)
	}
}

func TestParseMapsErrors(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"too few fields", "00400000-00401000 r-xp 00000000 fe:00\n"},
		{"no dash", "00400000 r-xp 00000000 fe:00 1 /a\n"},
		{"bad start", "zz-00401000 r-xp 00000000 fe:00 1 /a\n"},
		{"end before start", "00402000-00401000 r-xp 00000000 fe:00 1 /a\n"},
		{"bad perms", "00400000-00401000 rx 00000000 fe:00 1 /a\n"},
		{"bad offset", "00400000-00401000 r-xp 0x0 fe:00 1 /a\n"},
		{"bad device", "00400000-00401000 r-xp 00000000 fe00 1 /a\n"},
		{"bad inode", "00400000-00401000 r-xp 00000000 fe:00 -1 /a\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMaps(strings.NewReader(tc.in))
			var pe *ParseError
			if err == nil || !asParseError(err, &pe) || pe.Line != 1 {
				t.Errorf("ParseMaps(%q) = %v, want a ParseError on line 1", tc.in, err)
			}
		})
	}
}

func TestReadMapsSelf(t *testing.T) {
	ms, err := ReadMaps(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	found := false
	for _, m := range ms {
		found = found || m.Path == exe && m.Executable()
	}
	if !found {
		t.Errorf("no executable mapping of %s in own maps", exe)
	}
}
