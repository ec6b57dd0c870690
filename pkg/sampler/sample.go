package sampler

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/bprof/bprof/pkg/python"
)

// Kind says what a Sample records.
type Kind uint32

const (
	KindCPU         Kind = 1 // a cpu-clock tick on a target thread
	KindOffCPU      Kind = 2 // a finished off-CPU interval
	KindNeedThreads Kind = 3 // a Python target ran a thread whose state is unknown
	KindNeedMaps    Kind = 4 // a target ran code outside every mapping the sampler knows of it
	KindAlloc       Kind = 5 // a sampled allocation: Addr, Size, Value (its weight in bytes), user and Python stacks
)

// AllocTracked is set in State of a KindAlloc sample whose block the
// allocation sampler tracks: its address stays in the sampler's live set
// (memory.Sampler.LiveBlocks) until it is freed.
const AllocTracked = 1

// Flags carry what the BPF program could not do for a sample.
type Flags uint16

const (
	FlagPyTruncated     Flags = 1 << 0 // Python stack deeper than the walk's limit
	FlagPyReadErr       Flags = 1 << 1 // a Python frame could not be read
	FlagPyUnknownThread Flags = 1 << 2 // Python target, thread state unknown
	FlagPyTarget        Flags = 1 << 3 // the process is a registered CPython
	FlagKernelStackErr  Flags = 1 << 4
	FlagUserStackErr    Flags = 1 << 5
	FlagUserComplete    Flags = 1 << 6 // the native walk reached the outermost frame
	FlagUserTables      Flags = 1 << 7 // the native walk used unwind tables
)

// FrameByFP marks a user stack address found by the frame-pointer fallback
// rather than an unwind table; FrameAddr clears it.
const FrameByFP = 1 << 63

// FrameAddr is the address of a user stack word, without its marks.
func FrameAddr(w uint64) uint64 { return w & (1<<56 - 1) }

// Sample is one decoded record from the ring buffer. Stacks are leaf first.
type Sample struct {
	Kind   Kind
	Time   uint64 // CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns)
	Value  uint64 // KindOffCPU: nanoseconds off CPU; KindAlloc: the bytes the sample stands for
	FSBase uint64 // the thread pointer: pthread_self(), PyThreadState.thread_id
	PID    int    // process ID in the host's PID namespace
	TID    int
	CPU    int
	State  uint32 // KindOffCPU: 0 sleep, 1 runqueue; KindAlloc: AllocTracked or 0
	Addr   uint64 // KindAlloc: the block's address
	Size   uint64 // KindAlloc: the block's size in bytes
	Flags  Flags
	Comm   string
	Kernel []uint64
	User   []uint64
	Python []python.FrameRef // leaf first
}

const (
	hdrSize     = 88
	pyWords     = 3
	pyEntry     = 1 << 32 // PYFRAME_ENTRY
	pyCached    = 1 << 33 // PYFRAME_CACHED
	maxDataWord = 127 + 127 + 128*pyWords
)

// Decode parses one ring buffer record. It copies what it keeps, so raw may be reused.
func Decode(raw []byte) (Sample, error) {
	var s Sample
	err := DecodeInto(raw, &s)
	return s, err
}

// DecodeInto is Decode into s, whose stacks' arrays it reuses: a reader
// that handles one sample at a time allocates nothing per sample.
func DecodeInto(raw []byte, s *Sample) error {
	kernel, user, py, prevComm := s.Kernel[:0], s.User[:0], s.Python[:0], s.Comm
	*s = Sample{}
	if len(raw) < hdrSize {
		return fmt.Errorf("decode sample: %d bytes, want at least %d", len(raw), hdrSize)
	}
	le := binary.LittleEndian
	s.Time = le.Uint64(raw[0:])
	s.Value = le.Uint64(raw[8:])
	s.FSBase = le.Uint64(raw[16:])
	s.PID = int(le.Uint32(raw[24:]))
	s.TID = int(le.Uint32(raw[28:]))
	s.CPU = int(le.Uint32(raw[32:]))
	s.Kind = Kind(le.Uint32(raw[36:]))
	klen := int(le.Uint16(raw[40:]))
	ulen := int(le.Uint16(raw[42:]))
	plen := int(le.Uint16(raw[44:]))
	s.Flags = Flags(le.Uint16(raw[46:]))
	s.State = le.Uint32(raw[48:])
	comm := raw[56:72]
	for i, c := range comm {
		if c == 0 {
			comm = comm[:i]
			break
		}
	}
	s.Comm = prevComm
	if string(comm) != prevComm { // a thread's samples come in runs: keep its name's string
		s.Comm = string(comm)
	}
	s.Addr = le.Uint64(raw[72:])
	s.Size = le.Uint64(raw[80:])

	words := klen + ulen + plen*pyWords
	if words > maxDataWord {
		return fmt.Errorf("decode sample: %d stack words, more than the %d a sample holds", words, maxDataWord)
	}
	data := raw[hdrSize:]
	if len(data) < words*8 {
		return fmt.Errorf("decode sample: %d bytes of stacks, header says %d (kind %d: %d kernel, %d user, %d Python frames)",
			len(data), words*8, s.Kind, klen, ulen, plen)
	}
	word := func(i int) uint64 { return le.Uint64(data[i*8:]) }
	kernel, user, py = slices.Grow(kernel, klen), slices.Grow(user, ulen), slices.Grow(py, plen)
	for i := range klen {
		kernel = append(kernel, word(i))
	}
	for i := range ulen {
		user = append(user, word(klen+i))
	}
	base := klen + ulen
	for i := range plen {
		w := base + i*pyWords
		info := word(w + 2)
		py = append(py, python.FrameRef{Code: word(w), Check: word(w + 1), Instr: int32(uint32(info)), Entry: info&pyEntry != 0, Cached: info&pyCached != 0})
	}
	s.Kernel, s.User, s.Python = kernel, user, py
	return nil
}

// Timestamp converts a sample time (CLOCK_MONOTONIC) to wall-clock time,
// given a pair of readings of both clocks taken together.
func Timestamp(ktime uint64, mono uint64, wall time.Time) time.Time {
	return wall.Add(time.Duration(int64(ktime) - int64(mono)))
}
