// Package flamegraph renders profiles offline: pprof files (bprof's own or any
// other, gzipped or not), folded stacks and directories of agent batches become
// an interactive SVG, a single-file HTML page, folded text or a speedscope file.
//
// The data path is one-way:
//
//	ReadFile / ReadBytes / ReadBatches   →  *profile.Profile (the one data model)
//	Extract(profile, Options)            →  *Stacks (one sample type, filtered, root first)
//	Write(w, stacks, Config)             →  SVG, HTML, folded or speedscope
//
// Frame kinds (Python, native, kernel, off-CPU, pseudo) are read from the
// Location's Mapping.File as docs/CONVENTIONS.md describes. Flame graphs drop
// frames narrower than Config.MinWidth into their parent, gathering the
// siblings that were dropped into one "[N narrow frames]" frame when that one
// is wide enough, so the image stays small for any number of stacks while every
// sample is still counted in its ancestors' widths.
package flamegraph
