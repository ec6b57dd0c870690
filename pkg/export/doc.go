// Package export turns symbolized samples into pprof profiles
// (github.com/google/pprof/profile) and writes them.
//
// A Builder aggregates samples with identical stacks and labels as they
// arrive, so its memory grows with the number of distinct stacks, not with the
// recording's length. The frame conventions (mappings that mark Python, kernel
// and pseudo frames; labels) are in docs/CONVENTIONS.md.
package export
