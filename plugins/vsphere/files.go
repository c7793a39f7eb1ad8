package vsphere

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hypersdk/hyperagent/plugins"
)

// written tracks every path an export created (temporary and final), so a
// failed export removes exactly what it wrote.
type written struct {
	mu    sync.Mutex
	paths []string
}

func (w *written) add(p string) {
	w.mu.Lock()
	w.paths = append(w.paths, p)
	w.mu.Unlock()
}

// removeAll deletes what was recorded; files already gone are fine.
func (w *written) removeAll() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, p := range w.paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	w.paths = nil
	return errors.Join(errs...)
}

// writeAtomic writes data under dir/name through a temporary file in the
// same directory, fsynced before the rename. The caller fsyncs dir once
// after its last rename.
func writeAtomic(dir, name string, data []byte, w *written) (plugins.File, error) {
	final := filepath.Join(dir, name)
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return plugins.File{}, err
	}
	w.add(f.Name())
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		return plugins.File{}, err
	}
	w.add(final)
	if err := os.Rename(f.Name(), final); err != nil {
		return plugins.File{}, err
	}
	sum := sha256.Sum256(data)
	return plugins.File{Path: final, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}, nil
}

// safeName keeps a file name portable: letters, digits, '.', '_' and '-';
// anything else (vSphere escapes '/' in names as %2f) becomes '_'.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
	s = strings.TrimLeft(s, ".")
	if s == "" {
		return "vm"
	}
	return s
}
