package flamegraph

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/google/pprof/profile"
)

// maxInput caps the size of one input after decompression.
const maxInput = 1 << 30

// ErrEmpty is returned (wrapped) for an input without samples.
var ErrEmpty = errors.New("empty profile (no samples)")

// ReadFile reads a pprof profile (gzipped or not) or folded stacks (gzipped or
// not) from the file name. Errors name the file: "read NAME: cause".
func ReadFile(name string) (*profile.Profile, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err // *PathError already reads "open NAME: cause"
	}
	p, err := ReadBytes(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return p, nil
}

// ReadBytes tells a pprof profile from folded stacks by their content and
// parses it. It never panics, whatever data holds.
func ReadBytes(data []byte) (*profile.Profile, error) {
	if len(data) == 0 {
		return nil, errors.New("empty file")
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		var err error
		if data, err = gunzip(data); err != nil {
			return nil, err
		}
	}
	var p *profile.Profile
	var foldErr error
	if isText(data) && looksFolded(data) {
		p, foldErr = ParseFolded(bytes.NewReader(data))
	}
	if p == nil {
		// A small protobuf can be valid UTF-8 too, and pprof also reads a few
		// legacy text formats: try pprof before giving up.
		if pp, err := parsePprof(data); err == nil {
			p = pp
		} else if foldErr != nil {
			return nil, fmt.Errorf("parse folded stacks: %w", foldErr)
		}
	}
	if p == nil {
		return nil, fmt.Errorf("not a pprof profile nor folded stacks (first line: %q)", firstLine(data))
	}
	if len(p.Sample) == 0 {
		return nil, ErrEmpty
	}
	return p, nil
}

// parsePprof parses data with the pprof package, turning a panic in its legacy
// text parsers into an error, and checks the result.
func parsePprof(data []byte) (p *profile.Profile, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("parse pprof: %v", r)
		}
	}()
	if p, err = profile.ParseData(data); err != nil {
		return nil, err
	}
	if err := p.CheckValid(); err != nil {
		return nil, fmt.Errorf("check pprof: %w", err)
	}
	return p, nil
}

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	if len(out) > maxInput {
		return nil, fmt.Errorf("decompress: more than %d bytes", maxInput)
	}
	return out, nil
}

// isText reports whether data is UTF-8 without NUL bytes, as folded stacks are.
func isText(data []byte) bool {
	return bytes.IndexByte(data, 0) < 0 && utf8.Valid(data)
}

func firstLine(data []byte) string {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	}
	if len(data) > 40 {
		return string(bytes.ToValidUTF8(data[:40], nil)) + "..."
	}
	return string(bytes.ToValidUTF8(data, nil))
}
