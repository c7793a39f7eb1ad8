package plugintest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// journal is the file-backed mode's memory: one JSON record per line,
// appended with a single write(2). It is not fsynced: it must survive
// SIGKILL, which leaves the page cache intact, not power loss. A process
// killed with SIGKILL either wrote the whole line or nothing (a torn last line is
// ignored on replay), so a fake's effect and its record are one event: the
// crash test counts effects by counting lines.
type journal struct {
	path string
}

func newJournal(dir, name string) (*journal, error) {
	if dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &journal{path: filepath.Join(dir, name)}, nil
}

// append writes one record; a nil journal (in-memory mode) does nothing.
func (j *journal) append(v any) error {
	if j == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// replay calls fn for every complete record, in order.
func (j *journal) replay(fn func(line []byte) error) error {
	if j == nil {
		return nil
	}
	f, err := os.Open(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Bytes()
		if !json.Valid(line) {
			continue // a torn last line from a killed writer
		}
		if err := fn(line); err != nil {
			return fmt.Errorf("%s: %w", j.path, err)
		}
	}
	return sc.Err()
}

// writeFile writes data to path atomically (temp + rename) and
// returns its size and sha256, as a real plugin reports them.
func writeFile(path string, data []byte) (int64, string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part*")
	if err != nil {
		return 0, "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return 0, "", err
	}
	if err := tmp.Close(); err != nil {
		return 0, "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, "", err
	}
	sum := sha256.Sum256(data)
	return int64(len(data)), hex.EncodeToString(sum[:]), nil
}

// fileIntact says path exists as a regular file of the given size.
func fileIntact(path string, size int64) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Size() == size
}

// gauge counts calls in flight and remembers the high-water mark.
type gauge struct{ cur, high int }

func (g *gauge) inc() {
	g.cur++
	if g.cur > g.high {
		g.high = g.cur
	}
}

func (g *gauge) dec() { g.cur-- }
