package fsutil

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/renameio/v2"
	"golang.org/x/sys/unix"
)

// WriteFileAtomic writes data to path so that a reader sees either the old
// file or the whole new one, and a crash after it returns loses neither:
// renameio's dot-prefixed temp file in the same directory (watch-directory
// daemons ignore dot-files), fsync, rename, then the fsync of the directory
// that renameio leaves to its caller. The file gets exactly perm, whatever
// the umask and whatever mode a replaced file had.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithStaticPermissions(perm))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that a rename or create in it is durable.
// File systems that cannot sync a directory (EINVAL) are not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// CopyChunk is the copy buffer: large enough that syscalls do not dominate
// a multi-GiB disk copy, small enough to pool.
const CopyChunk = 4 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, CopyChunk); return &b }}

// CopyContext copies r to w in CopyChunk pieces with a pooled buffer,
// stopping when ctx ends, and reports the bytes done so far to progress
// (nil: none) after each piece.
func CopyContext(ctx context.Context, w io.Writer, r io.Reader, progress func(done int64)) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return n, err
			}
			n += int64(m)
			if progress != nil {
				progress(n)
			}
		}
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// SHA256File reads the file at path whole and returns its sha256 (lower-
// case hex) and the bytes read, stopping when ctx ends; progress as for
// CopyContext.
func SHA256File(ctx context.Context, path string, progress func(done int64)) (sum string, n int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	if n, err = CopyContext(ctx, h, f, progress); err != nil {
		return "", n, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// FormatBytes shows a byte count in binary units: 512 B, 1.5 MiB, 10.0 GiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ReadRegular reads the regular file at path, at most limit bytes of it,
// without following a symlink or blocking on a FIFO: it is opened with
// O_NOFOLLOW and O_NONBLOCK and read only if the open file is regular.
// For files others put in shared directories (a watch directory's
// manifests, sidecars and heartbeats).
func ReadRegular(path string, limit int64) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if fi.Size() > limit {
		return nil, &TooLargeError{Path: path, Size: fi.Size(), Limit: limit}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{Path: path, Size: int64(len(b)), Limit: limit, Grew: true}
	}
	return b, nil
}

// TooLargeError is ReadRegular's refusal of a file over its limit: its
// size at the open, or, with Grew, one that grew past the limit while it
// was read (Size is then what was read, the limit and a byte).
type TooLargeError struct {
	Path        string
	Size, Limit int64
	Grew        bool
}

func (e *TooLargeError) Error() string {
	if e.Grew {
		return fmt.Sprintf("%s grew past the limit of %d bytes while it was read", e.Path, e.Limit)
	}
	return fmt.Sprintf("%s is %d bytes, over the limit of %d", e.Path, e.Size, e.Limit)
}

// ResolveExisting resolves the symlinks in the deepest part of p that
// exists, keeping the rest as written: the path p will have once its
// missing directories are created as plain ones, which cannot lead
// anywhere else. p is cleaned first. The worker checks an output
// directory against its roots this way, and the converter's plan-time
// check must agree with it.
func ResolveExisting(p string) (string, error) {
	existing, rest := filepath.Clean(p), ""
	for {
		_, err := os.Lstat(existing)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			return filepath.Clean(p), nil // nothing of it exists
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = parent
	}
	real, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return "", err
	}
	return filepath.Join(real, rest), nil
}
