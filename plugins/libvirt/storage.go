package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// placeDisk moves one converted disk to dst and returns dst's size and
// sha256. It never replaces a file: a dst that exists is adopted only when
// it holds the expected bytes (an earlier attempt of ours that stopped
// before removing src), and otherwise refused with a terminal error, since
// it is someone else's (another campaign's disk of the same name).
//
// A rename is used when src and dst share a filesystem; otherwise the
// bytes are copied to a temporary name in dst's directory, hashed while
// copying, checked against want (when known), synced and renamed, and only
// then is src removed. A retry after a crash finds src (start again), dst
// (verify it), or both (adopt dst when its bytes are src's).
func placeDisk(ctx context.Context, src, dst, want string) (plugins.File, error) {
	_, srcErr := os.Stat(src)
	if errors.Is(srcErr, os.ErrNotExist) {
		return placedEarlier(ctx, src, dst, want)
	}
	if srcErr != nil {
		return plugins.File{}, fmt.Errorf("converted disk %s: %w", src, srcErr)
	}
	if src == dst {
		return verifyFile(ctx, dst, want)
	}
	if _, err := os.Lstat(dst); err == nil {
		return adoptExisting(ctx, src, dst, want)
	}
	err := renameNoReplace(src, dst)
	switch {
	case err == nil:
		if err := fsutil.SyncDir(filepath.Dir(dst)); err != nil {
			return plugins.File{}, err
		}
		return fileFacts(ctx, dst, want)
	case errors.Is(err, fs.ErrExist):
		// Appeared since the check above.
		return adoptExisting(ctx, src, dst, want)
	case !errors.Is(err, syscall.EXDEV):
		return plugins.File{}, fmt.Errorf("move %s to %s: %w", src, dst, err)
	}
	f, err := copyVerified(ctx, src, dst, want)
	if err != nil {
		return plugins.File{}, err
	}
	if err := os.Remove(src); err != nil {
		return plugins.File{}, fmt.Errorf("remove %s after copying it to %s: %w", src, dst, err)
	}
	return f, nil
}

// placedEarlier handles a src that is gone: an earlier attempt moved it
// and did not record it, and dst is ours only if it holds the bytes the
// converter reported. Without a reported sha256 nothing can tell.
func placedEarlier(ctx context.Context, src, dst, want string) (plugins.File, error) {
	if _, err := os.Stat(dst); err != nil {
		return plugins.File{}, plugins.Terminal(fmt.Errorf("converted disk %s is gone and %s does not exist", src, dst))
	}
	if want == "" {
		return plugins.File{}, plugins.Terminal(fmt.Errorf("converted disk %s is gone and %s exists, but no sha256 was reported to tell whether it is that disk; it is not adopted", src, dst))
	}
	f, err := verifyFile(ctx, dst, "")
	if err != nil {
		return plugins.File{}, err
	}
	if f.SHA256 != want {
		return plugins.File{}, plugins.Terminal(fmt.Errorf("converted disk %s is gone and %s holds other bytes (sha256 %s, want %s); it is not adopted", src, dst, f.SHA256, want))
	}
	return f, nil
}

// adoptExisting handles a dst that exists while src is still there. It is
// adopted, and src removed, only when its bytes are the expected ones
// (want, or src's when want is unknown); otherwise it is never touched.
func adoptExisting(ctx context.Context, src, dst, want string) (plugins.File, error) {
	expected := want
	if expected == "" {
		f, err := verifyFile(ctx, src, "")
		if err != nil {
			return plugins.File{}, err
		}
		expected = f.SHA256
	}
	f, err := verifyFile(ctx, dst, "")
	if err != nil {
		return plugins.File{}, err
	}
	if f.SHA256 != expected {
		return plugins.File{}, foreignFile(src, dst, f.SHA256, expected)
	}
	if err := os.Remove(src); err != nil {
		return plugins.File{}, fmt.Errorf("remove %s, already placed as %s: %w", src, dst, err)
	}
	return f, nil
}

func foreignFile(src, dst, got, want string) error {
	return plugins.Terminal(fmt.Errorf("%s already exists and is not the converted disk %s (sha256 %s, want %s): it was not placed by this migration and is never overwritten (move it away, or set domain { name = ... })",
		dst, src, got, want))
}

// renameNoReplace renames src to dst unless dst exists, in which case the
// error matches fs.ErrExist and nothing changes. Where the kernel or the
// filesystem lacks RENAME_NOREPLACE, linkNoReplace does the same.
func renameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return linkNoReplace(src, dst)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	return nil
}

// linkNoReplace moves src to dst by a hard link, which fails when dst
// exists, then removes src. A crash between the two leaves both names on
// one inode, which placeDisk's retry adopts (same bytes) and completes.
func linkNoReplace(src, dst string) error {
	if err := os.Link(src, dst); err != nil {
		return err
	}
	return os.Remove(src)
}

// fileFacts sizes path and takes want as its sha256 when the caller knows
// it (a rename does not change bytes); otherwise it hashes the file.
func fileFacts(ctx context.Context, path, want string) (plugins.File, error) {
	if want == "" {
		return verifyFile(ctx, path, "")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return plugins.File{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return plugins.File{Path: path, Size: fi.Size(), SHA256: want}, nil
}

// verifyFile hashes path and compares with want when want is set.
func verifyFile(ctx context.Context, path, want string) (plugins.File, error) {
	got, n, err := fsutil.SHA256File(ctx, path, nil)
	if err != nil {
		return plugins.File{}, fmt.Errorf("verify %s: %w", path, err)
	}
	if want != "" && got != want {
		return plugins.File{}, plugins.Terminal(fmt.Errorf("%s: sha256 %s, want %s", path, got, want))
	}
	return plugins.File{Path: path, Size: n, SHA256: got}, nil
}

// copyVerified copies src to dst through a temporary file in dst's
// directory and renames it into place only when the bytes hash to want,
// and never over an existing dst.
func copyVerified(ctx context.Context, src, dst, want string) (_ plugins.File, err error) {
	in, err := os.Open(src)
	if err != nil {
		return plugins.File{}, fmt.Errorf("copy converted disk: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return plugins.File{}, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := fsutil.CopyContext(ctx, io.MultiWriter(tmp, h), in, nil)
	if err != nil {
		return plugins.File{}, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		return plugins.File{}, plugins.Terminal(fmt.Errorf("copy %s: sha256 %s, want %s", src, got, want))
	}
	if err := tmp.Chmod(0o644); err != nil {
		return plugins.File{}, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := tmp.Sync(); err != nil {
		return plugins.File{}, fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return plugins.File{}, fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := renameNoReplace(tmp.Name(), dst); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return plugins.File{}, fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
		// dst appeared while copying: ours only with these very bytes.
		f, verr := verifyFile(ctx, dst, "")
		if verr != nil {
			return plugins.File{}, verr
		}
		if f.SHA256 != got {
			return plugins.File{}, foreignFile(src, dst, f.SHA256, got)
		}
		os.Remove(tmp.Name())
		return f, nil
	}
	if err := fsutil.SyncDir(filepath.Dir(dst)); err != nil {
		return plugins.File{}, err
	}
	return plugins.File{Path: dst, Size: n, SHA256: got}, nil
}
