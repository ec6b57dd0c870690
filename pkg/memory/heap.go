package memory

import (
	"math"
	"strconv"
	"strings"

	"github.com/bprof/bprof/pkg/export"
	"github.com/bprof/bprof/pkg/symbolize"
)

// Site is where blocks were allocated: a symbolized stack and its labels,
// shared by every live block allocated there.
type Site struct {
	Frames []symbolize.Frame // leaf first
	Labels export.Labels
	key    string
	blocks int
	// bytes and objects live, summed over the site's blocks
	bytes, objects float64
}

type block struct {
	site    *Site
	seq     uint64  // Alloc's count when it added the block
	bytes   float64 // estimate of the live bytes this sampled block stands for
	objects float64
}

// Heap keeps the sampled blocks that are still live, by process and
// address, with their allocation sites. It is not safe for concurrent use.
type Heap struct {
	blocks map[int]map[uint64]block // by pid, then address
	n      int                      // blocks in all
	seq    uint64                   // Allocs so far
	sites  map[string]*Site
	key    strings.Builder
}

// NewHeap returns an empty Heap.
func NewHeap() *Heap {
	return &Heap{blocks: map[int]map[uint64]block{}, sites: map[string]*Site{}}
}

// Weight turns a sampled allocation of size bytes that the sampler weighted
// weight bytes into the allocations it stands for: weight = size/p, so
// 1/p = weight/size.
func Weight(size, weight uint64) (objects float64) {
	if size == 0 {
		return 1
	}
	return float64(weight) / float64(size)
}

// Alloc records a live sampled block of pid at addr, allocated at frames
// with labels, standing for bytes and objects. frames is copied when the
// site is new.
func (h *Heap) Alloc(pid int, addr uint64, frames []symbolize.Frame, l export.Labels, bytes, objects float64) {
	blocks := h.blocks[pid]
	if blocks == nil {
		blocks = map[uint64]block{}
		h.blocks[pid] = blocks
	}
	if old, ok := blocks[addr]; ok {
		// Freed since the last Retain: the new block replaces it.
		h.release(old)
		h.n--
	}
	site := h.site(frames, l)
	site.blocks++
	site.bytes += bytes
	site.objects += objects
	h.seq++
	blocks[addr] = block{site: site, seq: h.seq, bytes: bytes, objects: objects}
	h.n++
}

// Seq counts the blocks added so far: Retain leaves the blocks added after
// a given count alone.
func (h *Heap) Seq() uint64 { return h.seq }

// Retain keeps pid's blocks whose addresses are in live, the set its
// allocation sampler still tracks, and forgets the others, which were freed.
// Only blocks added up to Seq() == upTo are judged: live was copied when
// those had arrived, and a block that arrived later may be missing from it
// only because it is newer. It returns how many it forgot.
func (h *Heap) Retain(pid int, live map[uint64]struct{}, upTo uint64) (freed int) {
	for addr, b := range h.blocks[pid] {
		if _, ok := live[addr]; !ok && b.seq <= upTo {
			delete(h.blocks[pid], addr)
			h.release(b)
			h.n--
			freed++
		}
	}
	return freed
}

func (h *Heap) release(b block) {
	s := b.site
	s.blocks--
	s.bytes -= b.bytes
	s.objects -= b.objects
	if s.blocks == 0 {
		delete(h.sites, s.key)
	}
}

// Forget drops every block of pid (it exited, or is no longer profiled).
func (h *Heap) Forget(pid int) {
	for _, b := range h.blocks[pid] {
		h.release(b)
		h.n--
	}
	delete(h.blocks, pid)
}

// Len is the number of live sampled blocks.
func (h *Heap) Len() int { return h.n }

// Each calls f for every site with live blocks, with the bytes and objects
// live there, rounded. skip leaves out the sites of some processes.
func (h *Heap) Each(skip func(pid int) bool, f func(s *Site, bytes, objects int64)) {
	for _, s := range h.sites {
		if skip != nil && skip(s.Labels.PID) {
			continue
		}
		f(s, int64(math.Round(s.bytes)), int64(math.Round(s.objects)))
	}
}

func (h *Heap) site(frames []symbolize.Frame, l export.Labels) *Site {
	b := &h.key
	b.Reset()
	for i := range frames {
		f := &frames[i]
		b.WriteByte(byte('0' + f.Kind))
		b.WriteString(f.Name)
		b.WriteByte(0)
		b.WriteString(f.File)
		b.WriteByte(0)
		b.WriteString(strconv.FormatInt(f.Line, 36))
		b.WriteByte(0)
		if f.Module != nil {
			b.WriteString(strconv.FormatUint(f.Addr, 36))
		}
		b.WriteByte(1)
	}
	b.WriteString(strconv.Itoa(l.PID))
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(l.TID))
	b.WriteByte(0)
	b.WriteString(l.ThreadName)
	k := b.String()
	if s, ok := h.sites[k]; ok {
		return s
	}
	s := &Site{Frames: append([]symbolize.Frame(nil), frames...), Labels: l, key: k}
	h.sites[k] = s
	return s
}
