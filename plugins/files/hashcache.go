package files

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// hashCache remembers the sha256 of files by path, size and mtime, so that
// a file that did not change is hashed once: disks are tens of gigabytes
// and every plan observes them. With a cache file it survives restarts;
// the file holds only paths, sizes, times and digests.
type hashCache struct {
	file string // "" keeps the cache in memory only

	mu      sync.Mutex
	loaded  bool
	dirty   bool // entries changed since the file was read or written
	entries map[string]cacheEntry
	hashed  atomic.Int64 // files actually read and hashed, for tests and logs
}

// cacheEntry is a file's digest with the identity it had when hashed:
// size and mtime, and the change time and inode, which nobody can set
// back, so that a file rewritten in place with its mtime restored is
// hashed again.
type cacheEntry struct {
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	CtimeNS int64  `json:"ctime_ns"`
	Ino     uint64 `json:"ino"`
	SHA256  string `json:"sha256"`
}

// identity is what a cache entry is keyed on.
func identity(fi os.FileInfo) cacheEntry {
	e := cacheEntry{Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.CtimeNS, e.Ino = st.Ctim.Nano(), st.Ino
	}
	return e
}

func (e cacheEntry) same(o cacheEntry) bool {
	return e.Size == o.Size && e.MtimeNS == o.MtimeNS && e.CtimeNS == o.CtimeNS && e.Ino == o.Ino
}

type cacheFile struct {
	Version int                   `json:"version"`
	Entries map[string]cacheEntry `json:"entries"`
}

// cacheVersion 2 added the change time and inode; a version 1 cache is
// not trusted (its entries are hashed again).
const cacheVersion = 2

// sum returns the sha256 (hex) of path, hashing only when the cache holds
// nothing for its current identity (size, mtime, ctime, inode). progress, when set, gets the
// bytes hashed so far.
func (c *hashCache) sum(ctx context.Context, path string, progress func(done int64)) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	key := identity(fi)
	c.mu.Lock()
	c.load()
	e, ok := c.entries[path]
	c.mu.Unlock()
	if ok && e.same(key) {
		return e.SHA256, nil
	}
	sum, err := hashFile(ctx, path, progress)
	if err != nil {
		return "", err
	}
	c.hashed.Add(1)
	// A file changed while it was hashed gets no entry: its next stat
	// differs and it is hashed again.
	if after, err := os.Stat(path); err != nil || !identity(after).same(key) {
		return "", fmt.Errorf("%s changed while it was hashed", path)
	}
	key.SHA256 = sum
	c.mu.Lock()
	c.entries[path] = key
	c.dirty = true
	c.mu.Unlock()
	return sum, nil
}

// put records a digest computed elsewhere (while unpacking an OVA).
func (c *hashCache) put(path, sum string) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.load()
	e := identity(fi)
	e.SHA256 = sum
	c.entries[path] = e
	c.dirty = true
}

// load reads the cache file once; a missing or unreadable file starts an
// empty cache (it is only a cache). Called with mu held.
func (c *hashCache) load() {
	if c.loaded {
		return
	}
	c.loaded = true
	c.entries = map[string]cacheEntry{}
	if c.file == "" {
		return
	}
	b, err := os.ReadFile(c.file)
	if err != nil {
		return
	}
	var cf cacheFile
	if json.Unmarshal(b, &cf) == nil && cf.Version == cacheVersion && cf.Entries != nil {
		c.entries = cf.Entries
	}
}

// save writes the cache file atomically: temp file, fsync, rename, fsync
// of the directory.
func (c *hashCache) save() error {
	if c.file == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	b, err := json.Marshal(cacheFile{Version: cacheVersion, Entries: c.entries})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.file), 0o755); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(c.file, b, 0o600); err != nil {
		return err
	}
	c.dirty = false
	return nil
}

func hashFile(ctx context.Context, path string, progress func(int64)) (string, error) {
	sum, _, err := fsutil.SHA256File(ctx, path, progress)
	return sum, err
}
