package process

import (
	"container/list"
	"sync"
)

// DefaultCacheSize is how many parsed files a Cache from NewCache keeps.
const DefaultCacheSize = 1024

// Cache shares parsed ELF files between processes. A file is known first by
// what stat says of it (device, inode, modification time), which costs one
// stat call; only a file never seen is opened and parsed, and files with
// the same build ID share one Binary whatever their path or filesystem.
//
// It is bounded: it keeps the most recently used DefaultCacheSize Binaries
// and evicts the least recently used one beyond that. A Binary already
// handed out stays valid after eviction. Files that are not ELF are
// remembered too (as errors), in the same bound, so they are not reparsed.
//
// A Cache is safe for concurrent use. Two goroutines asking for the same
// unseen file at once may both parse it; one result is kept.
type Cache struct {
	mu     sync.Mutex
	max    int
	lru    *list.List // of *cacheEntry, most recent first
	byStat map[fileStat]*list.Element
	byID   map[FileID]*list.Element
	parses int // files parsed, for tests
}

type cacheEntry struct {
	bin   *Binary
	err   error // parse error, when the file is not a usable ELF file
	stats []fileStat
}

// NewCache returns an empty Cache holding up to DefaultCacheSize files.
func NewCache() *Cache { return newCache(DefaultCacheSize) }

func newCache(n int) *Cache {
	return &Cache{
		max:    max(n, 1),
		lru:    list.New(),
		byStat: make(map[fileStat]*list.Element),
		byID:   make(map[FileID]*list.Element),
	}
}

// Binary returns the parsed file behind mapping m of process pid, parsing
// it only when no process mapped the same file before.
func (c *Cache) Binary(pid int, m Mapping) (*Binary, error) {
	fs, err := statMapped(pid, m)
	if err != nil {
		return nil, err
	}
	key := fs
	key.Size = 0 // size adds nothing to identity given mtime; keep keys small
	c.mu.Lock()
	if e, ok := c.byStat[key]; ok {
		c.lru.MoveToFront(e)
		ce := e.Value.(*cacheEntry)
		c.mu.Unlock()
		return ce.bin, ce.err
	}
	c.mu.Unlock()

	b, parseErr, err := openBinary(pid, m)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.parses++
	if e, ok := c.byStat[key]; ok { // parsed meanwhile by another goroutine
		c.lru.MoveToFront(e)
		ce := e.Value.(*cacheEntry)
		return ce.bin, ce.err
	}
	if err != nil {
		if !parseErr {
			return nil, err // could not open: maybe transient, do not remember
		}
		c.insert(&cacheEntry{err: err, stats: []fileStat{key}}, key)
		return nil, err
	}
	if e, ok := c.byID[b.ID]; ok { // same contents seen under another inode
		c.lru.MoveToFront(e)
		ce := e.Value.(*cacheEntry)
		ce.stats = append(ce.stats, key)
		c.byStat[key] = e
		return ce.bin, nil
	}
	e := c.insert(&cacheEntry{bin: b, stats: []fileStat{key}}, key)
	c.byID[b.ID] = e
	return b, nil
}

func (c *Cache) insert(ce *cacheEntry, key fileStat) *list.Element {
	e := c.lru.PushFront(ce)
	c.byStat[key] = e
	for c.lru.Len() > c.max {
		c.evict(c.lru.Back())
	}
	return e
}

func (c *Cache) evict(e *list.Element) {
	ce := c.lru.Remove(e).(*cacheEntry)
	for _, k := range ce.stats {
		delete(c.byStat, k)
	}
	if ce.bin != nil {
		delete(c.byID, ce.bin.ID)
	}
}

// Len returns how many files the cache holds.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
