package python

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
)

// Version is a CPython release. Patch is 0 when only the file name was known.
type Version struct{ Major, Minor, Patch int }

func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Less reports whether v comes before major.minor; patch is ignored.
func (v Version) Less(major, minor int) bool {
	return v.Major < major || v.Major == major && v.Minor < minor
}

// AtLeast reports whether v is major.minor or later; patch is ignored.
func (v Version) AtLeast(major, minor int) bool { return !v.Less(major, minor) }

// interpreterName matches python3.X[m|d|dm] executables and
// libpython3.X[m|d|dm].so[.N…] libraries. Free-threaded builds ("t") and
// helpers like python3.11-config do not match.
var interpreterName = regexp.MustCompile(`^(lib)?python(\d+)\.(\d+)(m|d|dm)?(\.so(\.\d+)*)?$`)

// IsInterpreterFile reports whether the base name of path is a CPython
// executable (python3.11, python3.7m) or a CPython shared library
// (libpython3.12.so.1.0). It looks at the name only.
func IsInterpreterFile(path string) bool {
	_, err := VersionFromFileName(path)
	return err == nil
}

// VersionFromFileName parses the major and minor version from the base name
// of a CPython executable or libpython. Patch is 0.
func VersionFromFileName(path string) (Version, error) {
	base := filepath.Base(path)
	m := interpreterName.FindStringSubmatch(base)
	if m == nil || (m[1] == "lib") != (m[5] != "") {
		return Version{}, fmt.Errorf("parse python version from file name %q: not a python3.X executable or libpython", base)
	}
	major, _ := strconv.Atoi(m[2])
	minor, _ := strconv.Atoi(m[3])
	return Version{Major: major, Minor: minor}, nil
}

// VersionFromHex decodes a PY_VERSION_HEX value (0x030b07f0 is 3.11.7).
func VersionFromHex(hex uint32) Version {
	return Version{Major: int(hex >> 24), Minor: int(hex >> 16 & 0xff), Patch: int(hex >> 8 & 0xff)}
}

// ReadPyVersion reads the uint32 Py_Version (3.11+) at addr in mem.
func ReadPyVersion(mem io.ReaderAt, addr uint64) (Version, error) {
	var b [4]byte
	if err := readFull(mem, addr, b[:]); err != nil {
		return Version{}, fmt.Errorf("read Py_Version at %#x: %w", addr, err)
	}
	v := VersionFromHex(binary.LittleEndian.Uint32(b[:]))
	if v.Major != 3 {
		return Version{}, fmt.Errorf("read Py_Version at %#x: implausible version %s", addr, v)
	}
	return v, nil
}

// debugCookie opens _Py_DebugOffsets, the first member of _PyRuntime in 3.13+.
const debugCookie = "xdebugpy"

// errNoDebugOffsets says _PyRuntime does not start with the debug cookie
// (CPython before 3.13).
var errNoDebugOffsets = errors.New("no _Py_DebugOffsets cookie")

// ReadDebugVersion reads the version from the _Py_DebugOffsets header at the
// start of _PyRuntime (3.13+): the cookie "xdebugpy", then a uint64
// PY_VERSION_HEX. It also reports the free_threaded word that follows.
func ReadDebugVersion(mem io.ReaderAt, runtimeAddr uint64) (v Version, freeThreaded bool, err error) {
	var b [24]byte
	if err := readFull(mem, runtimeAddr, b[:]); err != nil {
		return Version{}, false, fmt.Errorf("read _Py_DebugOffsets at %#x: %w", runtimeAddr, err)
	}
	if string(b[:8]) != debugCookie {
		return Version{}, false, fmt.Errorf("read _Py_DebugOffsets at %#x: %w", runtimeAddr, errNoDebugOffsets)
	}
	hex := binary.LittleEndian.Uint64(b[8:])
	v = VersionFromHex(uint32(hex))
	if hex>>32 != 0 || v.Major != 3 {
		return Version{}, false, fmt.Errorf("read _Py_DebugOffsets at %#x: implausible version %#x", runtimeAddr, hex)
	}
	return v, binary.LittleEndian.Uint64(b[16:]) != 0, nil
}
