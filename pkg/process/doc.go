// Package process reads what bprof needs to know about a running process
// from /proc and from the files it maps: its mappings (/proc/PID/maps), its
// threads and their status, its memory (process_vm_readv), the ELF files it
// maps (symbols, sections, load bias) and the kernel's symbols
// (/proc/kallsyms).
//
// It is the bottom layer of bprof and imports no other bprof package.
//
// Paths in /proc/PID/maps are relative to the root of the process that reads
// them, not of the target: a target in its own mount namespace (a container)
// shows paths that mean something else, or nothing, on the host. OpenMapped
// therefore opens a mapped file through /proc/PID/map_files or
// /proc/PID/root, and checks that the device and inode of what it opened are
// the ones the mapping names.
//
// Parsed ELF files are shared between processes through a Cache keyed by
// file identity (FileID), so the libc mapped by a thousand processes is
// parsed once. A Binary holds no file descriptor: it copies what it needs
// while parsing.
//
// Everything here needs the privileges to read the target's /proc entries:
// in practice bprof runs as root (or with CAP_SYS_PTRACE and
// CAP_SYSLOG for kernel symbols).
package process
