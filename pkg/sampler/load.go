package sampler

import (
	"fmt"
	"reflect"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// load loads the programs the configuration needs and every map. The
// off-CPU and memory programs are left out unless asked for: each program
// costs verifier time at load (~55 ms here), and the kernel only loads what
// the struct given to LoadAndAssign names.
func (s *Sampler) load(spec *ebpf.CollectionSpec) error {
	// One BTF cache for every program: each load would otherwise parse the
	// kernel's BTF again (~20 ms of CPU and ~10 MB of garbage each).
	opts := &ebpf.CollectionOptions{Cache: btf.NewCache()}
	var core struct {
		BprofCpu *ebpf.Program `ebpf:"bprof_cpu"`
		profileMaps
		profileVariables
	}
	if err := spec.LoadAndAssign(&core, opts); err != nil {
		return err
	}
	s.objs.BprofCpu = core.BprofCpu
	s.objs.profileMaps, s.objs.profileVariables = core.profileMaps, core.profileVariables
	var err error
	if s.cfg.OffCPU {
		s.objs.BprofSwitch, err = loadProgram(spec, "bprof_switch", &s.objs.profileMaps, opts.Cache)
	}
	if err == nil && s.cfg.Memory {
		s.objs.BprofAlloc, err = loadProgram(spec, "bprof_alloc", &s.objs.profileMaps, opts.Cache)
	}
	if err != nil {
		s.objs.Close()
	}
	return err
}

// loadProgram loads the program called name from spec, using the maps
// already loaded in maps rather than new ones (its read-only constants,
// .rodata, are loaded again: the same values). types is the kernel BTF
// cache of the first load.
func loadProgram(spec *ebpf.CollectionSpec, name string, maps *profileMaps, types *btf.Cache) (*ebpf.Program, error) {
	replace := map[string]*ebpf.Map{}
	v := reflect.ValueOf(maps).Elem()
	for i := range v.NumField() {
		if m, ok := v.Field(i).Interface().(*ebpf.Map); ok && m != nil {
			replace[v.Type().Field(i).Tag.Get("ebpf")] = m
		}
	}
	progs := reflect.New(reflect.StructOf([]reflect.StructField{{
		Name: "Program", Type: reflect.TypeOf((*ebpf.Program)(nil)), Tag: reflect.StructTag(`ebpf:"` + name + `"`),
	}}))
	if err := spec.LoadAndAssign(progs.Interface(), &ebpf.CollectionOptions{MapReplacements: replace, Cache: types}); err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return progs.Elem().Field(0).Interface().(*ebpf.Program), nil
}
