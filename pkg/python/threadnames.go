package python

import (
	"errors"
	"fmt"
	"io"
)

// ThreadNames returns the name of every Python thread the threading module
// knows, keyed by its ident (threading.get_ident(), pthread_self(): the
// Thread.ThreadID of its thread state). It reads, in every interpreter of
// the runtime, sys.modules["threading"]._active, a dict of ident → Thread,
// and each Thread's _name. Threads threading does not know (started from C
// and never seen by threading.current_thread()) are absent, and so is
// everything when threading was never imported.
//
// The target keeps running: a Thread being added or removed may make one
// read fail. Such a thread is left out and the first error is returned with
// the names read; a map is always returned.
//
// Cost: one read for each sys.modules key up to "threading" and each
// threading global up to "_active", then five or six reads a thread: about
// 600 reads, 2–4 ms through /proc/PID/mem, for 100 threads.
func (in *Interpreter) ThreadNames(mem io.ReaderAt) (map[uint64]string, error) {
	names := map[uint64]string{}
	o := in.Offsets
	if o.InterpModules == Absent || o.DictKeysLayout == 0 {
		return names, fmt.Errorf("read thread names: not supported for Python %s", in.Version)
	}
	interp, err := readU64(mem, at(in.RuntimeAddr, o.RuntimeInterpretersHead))
	if err != nil {
		return names, fmt.Errorf("read thread names: read interpreters of _PyRuntime at %#x: %w", in.RuntimeAddr, err)
	}
	r := newObjReader(mem, o)
	var first error
	seen := map[uint64]bool{}
	for n := 0; interp != 0 && n < MaxInterpreters && !seen[interp]; n++ {
		seen[interp] = true
		err := in.interpThreadNames(r, interp, names)
		if err != nil && first == nil {
			first = fmt.Errorf("read thread names of interpreter at %#x: %w", interp, err)
		}
		if errors.Is(err, errReadBudget) {
			break
		}
		if interp, err = readU64(r.mem, at(interp, o.InterpNext)); err != nil {
			return names, errors.Join(first, fmt.Errorf("read thread names: read next interpreter: %w", err))
		}
	}
	return names, first
}

// interpThreadNames adds the names threading knows in one interpreter to
// names, leaving idents already there alone.
func (in *Interpreter) interpThreadNames(r *objReader, interp uint64, names map[uint64]string) error {
	modules, err := readU64(r.mem, at(interp, in.Offsets.InterpModules))
	if err != nil {
		return fmt.Errorf("read sys.modules: %w", err)
	}
	if modules == 0 {
		return nil // starting up or shutting down
	}
	threading, err := r.lookup(modules, "threading")
	if err != nil {
		return fmt.Errorf("look up threading in sys.modules at %#x: %w", modules, err)
	}
	if threading == 0 {
		return nil
	}
	globals, err := readU64(r.mem, at(threading, in.Offsets.ModuleDict))
	if err != nil {
		return fmt.Errorf("read globals of module threading at %#x: %w", threading, err)
	}
	active, err := r.dictAt(globals, "_active")
	if err != nil {
		return fmt.Errorf("look up threading._active: %w", err)
	}
	if active == 0 {
		return nil
	}
	items, err := readDict(r.mem, r.o, active)
	if err != nil {
		return fmt.Errorf("read threading._active: %w", err)
	}
	var first error
	for _, it := range items {
		ident, name, err := r.threadName(it)
		if errors.Is(err, errReadBudget) {
			return fmt.Errorf("read threading._active: %w", err)
		}
		if err != nil {
			if first == nil {
				first = fmt.Errorf("read threading._active: %w", err)
			}
			continue
		}
		if _, dup := names[ident]; !dup {
			names[ident] = name
		}
	}
	return first
}

// threadName reads one entry of threading._active: an int ident and a
// Thread whose _name is a str.
func (r *objReader) threadName(it dictItem) (uint64, string, error) {
	ident, err := readLong(r.mem, r.o, it.key)
	if err != nil {
		return 0, "", fmt.Errorf("read ident: %w", err)
	}
	name, err := r.attr(it.value, "_name")
	if err != nil {
		return 0, "", fmt.Errorf("read _name of thread %#x: %w", ident, err)
	}
	if name == 0 {
		return 0, "", fmt.Errorf("thread %#x at %#x has no _name", ident, it.value)
	}
	s, err := r.readStr(name)
	if err != nil {
		return 0, "", fmt.Errorf("read _name of thread %#x: %w", ident, err)
	}
	return ident, s, nil
}
