package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bprof/bprof/pkg/export"
)

// DirSink writes each batch as STEM.pb.gz and STEM.json in a directory, with
// STEM = APP-PID-STARTUNIXNANO (docs/CONVENTIONS.md). Both files are written
// atomically, the sidecar last, so a reader that sees STEM.json sees both.
type DirSink struct {
	dir string
	log *slog.Logger
	enc export.Encoder
}

// NewDirSink makes dir if needed. A nil log discards.
func NewDirSink(dir string, log *slog.Logger) (*DirSink, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make batch directory: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DirSink{dir: dir, log: log}, nil
}

func (d *DirSink) String() string { return d.dir }

// Close does nothing: every batch is on disk when Send returns.
func (d *DirSink) Close() error { return nil }

// sidecar is the JSON written next to each batch.
type sidecar struct {
	ApplicationName string            `json:"application_name"`
	Labels          map[string]string `json:"labels"`
	Hostname        string            `json:"hostname"`
	PID             int               `json:"pid"`
	Start           string            `json:"start"`
	End             string            `json:"end"`
	Samples         int64             `json:"samples"`
}

// Send writes b's two files.
func (d *DirSink) Send(b *Batch) error {
	t0 := time.Now()
	stem := fmt.Sprintf("%s-%d-%d", fileSafe(b.ApplicationName), b.PID, b.Start.UnixNano())
	var pb bytes.Buffer
	if err := d.enc.Encode(&pb, b.Profile); err != nil {
		return fmt.Errorf("encode batch %s: %w", stem, err)
	}
	labels := b.labels()
	js, err := json.MarshalIndent(sidecar{
		ApplicationName: b.ApplicationName,
		Labels:          labels,
		Hostname:        b.Hostname,
		PID:             b.PID,
		Start:           b.Start.UTC().Format(time.RFC3339Nano),
		End:             b.End.UTC().Format(time.RFC3339Nano),
		Samples:         b.Samples,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode sidecar %s: %w", stem, err)
	}
	pbPath := filepath.Join(d.dir, stem+".pb.gz")
	if err := writeAtomic(pbPath, pb.Bytes()); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(d.dir, stem+".json"), append(js, '\n')); err != nil {
		return err
	}
	d.log.Info("batch shipped", "application", b.ApplicationName, "pid", b.PID,
		"span", b.End.Sub(b.Start).Round(time.Millisecond), "samples", b.Samples,
		"bytes", pb.Len(), "destination", pbPath, "latency", time.Since(t0).Round(time.Microsecond))
	return nil
}

// fileSafe replaces what cannot be in a file name stem.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == '\\' || r < ' ' {
			return '_'
		}
		return r
	}, s)
}

// writeAtomic writes data to path through a temporary file and a rename, so
// readers never see a partial file.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
