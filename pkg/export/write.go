package export

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/pprof/profile"
)

// CheckWritable makes sure a file can be created at path, without leaving one
// behind, so a recording does not run for minutes only to fail at the end.
func CheckWritable(path string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".bprof-check-*")
	if err != nil {
		return fmt.Errorf("output %s is not writable: %w", path, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// WriteFile writes p gzipped to path atomically: readers see the old file or
// the whole new one, never a part.
func WriteFile(path string, p *profile.Profile) error {
	if err := p.CheckValid(); err != nil {
		return fmt.Errorf("write %s: invalid profile: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := new(Encoder).Encode(f, p); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
