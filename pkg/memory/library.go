package memory

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
)

// The library is committed, so building bprof needs no C compiler; `make
// generate` rebuilds it (reproducibly) and CI checks it matches its source.
//go:generate make -s -C ../../native/allocsampler force

//go:embed allocsampler.so
var library []byte

// libraryPrefix starts the file name of every version of the library.
const libraryPrefix = "bprof-alloc-"

// libraryName names this build of the library by its content, so a copy
// left in a target's /tmp by another bprof version is never mistaken for it.
var libraryName = func() string {
	sum := sha256.Sum256(library)
	return libraryPrefix + hex.EncodeToString(sum[:8]) + ".so"
}()

// Library returns the allocation sampler's shared object.
func Library() []byte { return library }

// LibraryName is the file name bprof gives the library in a target.
func LibraryName() string { return libraryName }

// The probe functions bprof attaches uprobes to (see pkg/sampler).
const (
	AllocProbe = "bprof_alloc_probe"
	FreeProbe  = "bprof_free_probe"
)

// DefaultSampleBytes is the default mean number of bytes between two
// sampled allocations, Go's runtime.MemProfileRate.
const DefaultSampleBytes = 512 << 10
