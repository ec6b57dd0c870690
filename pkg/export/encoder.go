package export

import (
	"compress/gzip"
	"fmt"
	"io"
	"sync"

	"github.com/google/pprof/profile"
)

// Encoder writes profiles gzipped, as profile.Write does, with one
// compressor used again: each gzip.Writer allocates ~800 KB of tables, so
// an agent that writes a batch for each of 54 processes every period made
// 40 MB of garbage a period in them alone. An Encoder is safe for
// concurrent use; encodings take turns.
type Encoder struct {
	mu sync.Mutex
	gz *gzip.Writer
}

// Encode writes p to w, gzipped.
func (e *Encoder) Encode(w io.Writer, p *profile.Profile) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gz == nil {
		e.gz = gzip.NewWriter(w)
	} else {
		e.gz.Reset(w)
	}
	if err := encode(e.gz, p); err != nil {
		return fmt.Errorf("encode profile: %w", err)
	}
	if err := e.gz.Close(); err != nil {
		return fmt.Errorf("compress profile: %w", err)
	}
	return nil
}
