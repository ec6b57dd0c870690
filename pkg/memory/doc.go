// Package memory gives bprof memory profiles of CPython processes:
// allocations, allocated bytes and heap live, with the same stacks as CPU
// samples.
//
// Deciding which allocation to sample must happen inside the target: a
// uprobe on every allocation costs ~15 µs a hit, a ~300x slowdown. So a tiny
// library (native/allocsampler, embedded here) wraps CPython's object and
// mem allocators and calls a probe function for a sampled allocation, and
// for the free of a sampled block; bprof's uprobes on those (pkg/sampler)
// take the stacks. This package
//   - carries the library and places it where the target can load it
//     (its own /tmp, through /proc/PID/root);
//   - loads it into a running CPython 3.14+ by PEP 768 remote execution
//     (Inject); older versions load it themselves through bprof_client;
//   - finds a loaded sampler and switches it on and off (Sampler), by
//     writing its control block in the target's memory;
//   - keeps the sampled blocks still live and their allocation sites (Heap),
//     for the inuse_* sample types.
//
// Values are estimates of the true totals (see docs/CONVENTIONS.md): a
// sampled allocation of s bytes was sampled with probability
// p = 1 - exp(-s/mean) and stands for s/p bytes and 1/p allocations.
package memory
