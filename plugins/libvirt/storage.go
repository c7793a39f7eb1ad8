package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// placeDisk moves one converted disk to dst and returns dst's size and
// sha256. A rename is used when src and dst share a filesystem; otherwise
// the bytes are copied to a temporary name in dst's directory, hashed while
// copying, checked against want (when known), synced and renamed, and only
// then is src removed. A retry after a crash finds either src (start
// again) or dst (verify it).
func placeDisk(ctx context.Context, src, dst, want string) (plugins.File, error) {
	_, srcErr := os.Stat(src)
	if errors.Is(srcErr, os.ErrNotExist) {
		// Moved by an earlier attempt that did not record it.
		if _, err := os.Stat(dst); err != nil {
			return plugins.File{}, plugins.Terminal(fmt.Errorf("converted disk %s is gone and %s does not exist", src, dst))
		}
		return verifyFile(ctx, dst, want)
	}
	if srcErr != nil {
		return plugins.File{}, fmt.Errorf("place disk: %w", srcErr)
	}
	if src == dst {
		return verifyFile(ctx, dst, want)
	}
	err := os.Rename(src, dst)
	if err == nil {
		if err := fsutil.SyncDir(filepath.Dir(dst)); err != nil {
			return plugins.File{}, err
		}
		return fileFacts(ctx, dst, want)
	}
	if !errors.Is(err, syscall.EXDEV) {
		return plugins.File{}, fmt.Errorf("move disk %s to %s: %w", src, dst, err)
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
	f, err := os.Open(path)
	if err != nil {
		return plugins.File{}, fmt.Errorf("verify %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := fsutil.CopyContext(ctx, h, f, nil)
	if err != nil {
		return plugins.File{}, fmt.Errorf("hash %s: %w", path, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		return plugins.File{}, plugins.Terminal(fmt.Errorf("%s: sha256 %s, want %s", path, got, want))
	}
	return plugins.File{Path: path, Size: n, SHA256: got}, nil
}

// copyVerified copies src to dst through a temporary file in dst's
// directory and renames it into place only when the bytes hash to want.
func copyVerified(ctx context.Context, src, dst, want string) (_ plugins.File, err error) {
	in, err := os.Open(src)
	if err != nil {
		return plugins.File{}, fmt.Errorf("copy disk: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return plugins.File{}, fmt.Errorf("copy disk: %w", err)
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
		return plugins.File{}, fmt.Errorf("copy disk: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return plugins.File{}, fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return plugins.File{}, fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return plugins.File{}, fmt.Errorf("copy disk: %w", err)
	}
	if err := fsutil.SyncDir(filepath.Dir(dst)); err != nil {
		return plugins.File{}, err
	}
	return plugins.File{Path: dst, Size: n, SHA256: got}, nil
}
