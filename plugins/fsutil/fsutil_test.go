package fsutil

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileAtomicReplacesWithExactMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new\n" {
		t.Fatalf("content %q, %v", b, err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600 over a 0644 file", fi.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
}

// A write that cannot finish leaves the old file as it was and no temp
// file behind: here the rename fails because the target is a directory.
func TestWriteFileAtomicFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "x")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	err := WriteFileAtomic(target, []byte("data"), 0o644)
	if err == nil || !strings.Contains(err.Error(), "write "+target) {
		t.Fatalf("err = %v, want one naming %s", err, target)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || !entries[0].IsDir() {
		t.Errorf("left behind: %v", entries)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), nil, 0o644); err == nil {
		t.Error("a write into a missing directory succeeded")
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "gone")); err == nil {
		t.Fatal("syncing a missing directory succeeded")
	}
}

func TestCopyContextProgress(t *testing.T) {
	src := bytes.Repeat([]byte("0123456789abcdef"), (2*CopyChunk+100)/16)
	var dst bytes.Buffer
	var reports []int64
	n, err := CopyContext(context.Background(), &dst, bytes.NewReader(src), func(d int64) { reports = append(reports, d) })
	if err != nil || n != int64(len(src)) || !bytes.Equal(dst.Bytes(), src) {
		t.Fatalf("copied %d of %d, %v", n, len(src), err)
	}
	if len(reports) < 3 || reports[len(reports)-1] != int64(len(src)) {
		t.Errorf("progress %v, want increasing reports ending at %d", reports, len(src))
	}
	for i := 1; i < len(reports); i++ {
		if reports[i] <= reports[i-1] {
			t.Errorf("progress went back: %v", reports)
		}
	}
}

// cancelAfter is a reader that cancels the copy's context once read from.
type cancelAfter struct {
	cancel context.CancelFunc
}

func (c cancelAfter) Read(p []byte) (int, error) {
	c.cancel()
	return len(p), nil
}

func TestCopyContextStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var dst bytes.Buffer
	n, err := CopyContext(ctx, &dst, cancelAfter{cancel}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n != CopyChunk || dst.Len() != CopyChunk {
		t.Errorf("copied %d (%d written), want exactly the one chunk read before the cancel", n, dst.Len())
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 19: "1.5 MiB", 10 << 30: "10.0 GiB", 1 << 50: "1.0 PiB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestResolveExisting: the symlinks of the part that exists are
// resolved, the rest kept as written.
func TestResolveExisting(t *testing.T) {
	root := t.TempDir()
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "real"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		filepath.Join(root, "link", "a", "b"): filepath.Join(realRoot, "real", "a", "b"),
		filepath.Join(root, "link") + "/":     filepath.Join(realRoot, "real"),
		filepath.Join(root, "new", "x"):       filepath.Join(realRoot, "new", "x"),
	} {
		if got, err := ResolveExisting(in); err != nil || got != want {
			t.Errorf("ResolveExisting(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
