package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// upload is one request to the Pyroscope server, as spooled.
type upload struct {
	App      string `json:"app"`
	PID      int    `json:"pid"`
	Kind     string `json:"kind"` // "cpu" or "wall"
	Name     string `json:"name"` // app{k=v,...}
	From     int64  `json:"from"`
	Until    int64  `json:"until"`
	Samples  int64  `json:"samples"`
	PeriodNs int64  `json:"period_ns"`  // the batch's period: bound of the retry back-off
	Timeout  int64  `json:"timeout_ns"` // bound of one attempt
	Body     []byte `json:"body"`       // gzipped pprof
}

// spool is a FIFO of uploads bounded in bytes, kept in dir (one file per
// upload, named by sequence number) or, without dir, in memory. When a push
// would exceed max, the oldest uploads are dropped.
type spool struct {
	dir string
	max int64

	mu      sync.Mutex
	entries []spoolEntry
	size    int64
	next    uint64
	dropped int64
	notify  chan struct{} // one token after each push
	// sending is the upload head last returned, until it is removed: the
	// one being sent, which overflow must not drop (it may be delivered,
	// and would then be counted both as sent and as dropped).
	sending   uint64
	isSending bool
}

type spoolEntry struct {
	seq  uint64
	size int64
	up   *upload // nil when on disk
}

const spoolExt = ".upload.json"

func newSpool(dir string, max int64) *spool {
	return &spool{dir: dir, max: max, notify: make(chan struct{}, 1)}
}

// load reads the uploads a previous agent left in dir, oldest first. It
// removes files it cannot read and reports how many.
func (s *spool) load() (bad int, err error) {
	if s.dir == "" {
		return 0, nil
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return 0, fmt.Errorf("make spool directory: %w", err)
	}
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, fmt.Errorf("read spool: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, spoolExt) {
			continue
		}
		seq, perr := strconv.ParseUint(strings.TrimSuffix(name, spoolExt), 10, 64)
		info, ierr := de.Info()
		if perr != nil || ierr != nil || !info.Mode().IsRegular() {
			os.Remove(filepath.Join(s.dir, name))
			bad++
			continue
		}
		s.entries = append(s.entries, spoolEntry{seq: seq, size: info.Size()})
		s.size += info.Size()
		s.next = max(s.next, seq+1)
	}
	sort.Slice(s.entries, func(i, j int) bool { return s.entries[i].seq < s.entries[j].seq })
	if len(s.entries) > 0 {
		s.signal()
	}
	return bad, nil
}

func (s *spool) path(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, spoolExt))
}

func (s *spool) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// push appends ups, dropping the oldest uploads while the spool is over its
// bound; it returns how many it dropped.
func (s *spool) push(ups ...*upload) (dropped int, err error) {
	data := make([][]byte, len(ups))
	for i, u := range ups {
		if data[i], err = json.Marshal(u); err != nil {
			return 0, fmt.Errorf("encode upload: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// All of a batch is on disk before the sender hears of any: an agent
	// killed while the first is being sent keeps the rest.
	defer s.signal()
	for i, u := range ups {
		e := spoolEntry{seq: s.next, size: int64(len(data[i]))}
		if s.dir == "" {
			e.up = u
		} else if err := writeAtomic(s.path(e.seq), data[i]); err != nil {
			return dropped, fmt.Errorf("spool upload: %w", err)
		}
		s.next++
		s.entries = append(s.entries, e)
		s.size += e.size
		dropped += s.trimLocked()
	}
	return dropped, nil
}

// trimLocked drops the oldest uploads while the spool is over its size,
// keeping the newest and the one being sent; it returns how many.
func (s *spool) trimLocked() (dropped int) {
	for s.max > 0 && s.size > s.max {
		i := 0
		if s.isSending && s.entries[0].seq == s.sending {
			i = 1
		}
		if i >= len(s.entries)-1 {
			break // keep the newest, and the one being sent
		}
		s.removeLocked(s.entries[i].seq)
		dropped++
	}
	s.dropped += int64(dropped)
	return dropped
}

// head returns the oldest upload. A file that cannot be read is removed and
// reported as err, with ok true so the caller goes on.
func (s *spool) head() (seq uint64, u *upload, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 {
		return 0, nil, false, nil
	}
	e := s.entries[0]
	s.sending, s.isSending = e.seq, true
	if e.up != nil {
		return e.seq, e.up, true, nil
	}
	data, err := os.ReadFile(s.path(e.seq))
	if err == nil {
		u = new(upload)
		err = json.Unmarshal(data, u)
	}
	if err != nil {
		s.removeLocked(e.seq)
		return e.seq, nil, true, fmt.Errorf("read spooled upload %d: %w", e.seq, err)
	}
	return e.seq, u, true, nil
}

// remove deletes the upload seq, if it is still there.
func (s *spool) remove(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(seq)
}

func (s *spool) removeLocked(seq uint64) {
	if s.isSending && seq == s.sending {
		s.isSending = false
	}
	for i, e := range s.entries {
		if e.seq != seq {
			continue
		}
		if s.dir != "" {
			os.Remove(s.path(seq))
		}
		s.size -= e.size
		s.entries = append(s.entries[:i], s.entries[i+1:]...)
		return
	}
}

// len returns the number of uploads and their size in bytes.
func (s *spool) len() (n int, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries), s.size
}
