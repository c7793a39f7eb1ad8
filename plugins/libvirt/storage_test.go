package libvirt

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/plugins"
)

// sameFS reports whether two directories are on one filesystem.
func sameFS(t *testing.T, a, b string) bool {
	t.Helper()
	var sa, sb syscall.Stat_t
	if err := syscall.Stat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Dev == sb.Dev
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// shmDir is a directory on tmpfs, a filesystem other than the test's
// TempDir on these machines, to exercise the copy path of a move.
func shmDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", "hyperagent-libvirt-")
	if err != nil {
		t.Fatalf("need /dev/shm for the cross-filesystem move: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestPlaceDisk(t *testing.T) {
	ctx := context.Background()
	tests := map[string]struct {
		srcDir func(t *testing.T) string
	}{
		"same filesystem": {func(t *testing.T) string { return t.TempDir() }},
		"across filesystems": {func(t *testing.T) string {
			d := shmDir(t)
			if sameFS(t, d, os.TempDir()) {
				t.Fatalf("/dev/shm and %s share a filesystem; this test needs two", os.TempDir())
			}
			return d
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src := makeDisk(t, tc.srcDir(t), "disk-0", "qcow2", 0)
			dst := filepath.Join(t.TempDir(), "vm-disk-0.qcow2")
			f, err := placeDisk(ctx, src.Path, dst, src.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(plugins.File{Path: dst, Size: src.Size, SHA256: src.SHA256}, f); diff != "" {
				t.Errorf("placed (-want +got):\n%s", diff)
			}
			if exists(src.Path) {
				t.Errorf("source still there after the move")
			}
			if sum, _ := hashFile(t, dst); sum != src.SHA256 {
				t.Errorf("destination sha256 %s, want %s", sum, src.SHA256)
			}
			assertNoTemps(t, filepath.Dir(dst))

			// A retry after a crash between the move and the record.
			again, err := placeDisk(ctx, src.Path, dst, src.SHA256)
			if err != nil || again != f {
				t.Errorf("retry = %+v, %v; want %+v", again, err, f)
			}
		})
	}
}

func TestCopyVerifiedRefusesCorruption(t *testing.T) {
	src := makeDisk(t, shmDir(t), "disk-0", "raw", 0)
	dir := t.TempDir()
	dst := filepath.Join(dir, "vm-disk-0.raw")
	wrong := strings.Repeat("0", 64)
	_, err := copyVerified(context.Background(), src.Path, dst, wrong)
	if err == nil || !plugins.IsTerminal(err) {
		t.Fatalf("err = %v, want a terminal checksum mismatch", err)
	}
	if exists(dst) {
		t.Errorf("a file that failed verification was renamed into place")
	}
	assertNoTemps(t, dir)
	if !exists(src.Path) {
		t.Errorf("source removed although the copy failed")
	}
}

func TestPlaceDiskBothGone(t *testing.T) {
	dir := t.TempDir()
	_, err := placeDisk(context.Background(), filepath.Join(dir, "a"), filepath.Join(dir, "b"), "")
	if !plugins.IsTerminal(err) {
		t.Errorf("err = %v, want terminal", err)
	}
}

// TestPlaceDiskSourceGone: with the converted disk gone, the file at dst
// is taken for it only when it holds the bytes the converter reported.
func TestPlaceDiskSourceGone(t *testing.T) {
	dst := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
	src := filepath.Join(t.TempDir(), "gone.qcow2")
	tests := map[string]struct {
		want    string
		adopted bool
	}{
		"same bytes":       {dst.SHA256, true},
		"other bytes":      {strings.Repeat("0", 64), false},
		"nothing to check": {"", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, err := placeDisk(context.Background(), src, dst.Path, tc.want)
			if tc.adopted {
				if err != nil || f != (plugins.File{Path: dst.Path, Size: dst.Size, SHA256: dst.SHA256}) {
					t.Errorf("placeDisk = %+v, %v; want %s adopted", f, err, dst.Path)
				}
				return
			}
			if !plugins.IsTerminal(err) || !strings.Contains(err.Error(), src) || !strings.Contains(err.Error(), dst.Path) {
				t.Errorf("err = %v, want terminal naming %s and %s", err, src, dst.Path)
			}
			if sum, _ := hashFile(t, dst.Path); sum != dst.SHA256 {
				t.Errorf("%s changed", dst.Path)
			}
		})
	}
}

// TestPlaceDiskNeverOverwrites: a file already at dst is someone else's
// (another campaign's disk of the same domain name and disk id) unless it
// holds the converted disk's bytes, in which case it is an earlier
// attempt's copy and is adopted as it is. Neither is ever replaced.
func TestPlaceDiskNeverOverwrites(t *testing.T) {
	fss := map[string]func(t *testing.T) string{
		"same filesystem":    func(t *testing.T) string { return t.TempDir() },
		"across filesystems": func(t *testing.T) string { return shmDir(t) },
	}
	tests := map[string]struct {
		existing string // "other": another disk's bytes; "same": src's
		want     bool   // the converter reported a sha256
	}{
		"someone else's file":                 {"other", true},
		"someone else's file, no checksum":    {"other", false},
		"earlier attempt's copy":              {"same", true},
		"earlier attempt's copy, no checksum": {"same", false},
	}
	for fsName, srcDir := range fss {
		for name, tc := range tests {
			t.Run(fsName+"/"+name, func(t *testing.T) {
				src := makeDisk(t, srcDir(t), "disk-0", "qcow2", 0)
				dir := t.TempDir()
				dst := filepath.Join(dir, "vm-disk-0.qcow2")
				existing := makeDiskSized(t, t.TempDir(), "other", "qcow2", 0, "32M")
				if tc.existing == "same" {
					existing = makeDisk(t, t.TempDir(), "copy", "qcow2", 0)
				}
				if err := os.Rename(existing.Path, dst); err != nil {
					t.Fatal(err)
				}
				ino := inode(t, dst)
				want := ""
				if tc.want {
					want = src.SHA256
				}

				f, err := placeDisk(context.Background(), src.Path, dst, want)
				if tc.existing == "same" {
					if err != nil || f != (plugins.File{Path: dst, Size: src.Size, SHA256: src.SHA256}) {
						t.Errorf("placeDisk = %+v, %v; want the earlier copy adopted", f, err)
					}
					if exists(src.Path) {
						t.Errorf("source left behind after adopting the earlier copy")
					}
				} else {
					if !plugins.IsTerminal(err) || !strings.Contains(err.Error(), src.Path) || !strings.Contains(err.Error(), dst) {
						t.Errorf("err = %v, want terminal naming %s and %s", err, src.Path, dst)
					}
					if sum, _ := hashFile(t, src.Path); sum != src.SHA256 {
						t.Errorf("source changed or removed although nothing was placed")
					}
				}
				if got := inode(t, dst); got != ino {
					t.Errorf("%s replaced: inode %d -> %d", dst, ino, got)
				}
				if sum, _ := hashFile(t, dst); sum != existing.SHA256 {
					t.Errorf("%s changed: sha256 %s, was %s", dst, sum, existing.SHA256)
				}
				assertNoTemps(t, dir)
			})
		}
	}
}

// TestCopyVerifiedNeverOverwrites: a dst that appears while the bytes are
// copied is never replaced by the copy.
func TestCopyVerifiedNeverOverwrites(t *testing.T) {
	src := makeDisk(t, shmDir(t), "disk-0", "raw", 0)
	for name, same := range map[string]bool{"someone else's file": false, "the same bytes": true} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			dst := filepath.Join(dir, "vm-disk-0.raw")
			existing := makeDiskSized(t, t.TempDir(), "other", "raw", 0, "1M")
			if same {
				existing = makeDisk(t, t.TempDir(), "copy", "raw", 0)
			}
			if err := os.Rename(existing.Path, dst); err != nil {
				t.Fatal(err)
			}
			ino := inode(t, dst)
			f, err := copyVerified(context.Background(), src.Path, dst, src.SHA256)
			if same && (err != nil || f.SHA256 != src.SHA256) {
				t.Errorf("copyVerified = %+v, %v; want the existing copy taken", f, err)
			}
			if !same && (!plugins.IsTerminal(err) || !strings.Contains(err.Error(), dst)) {
				t.Errorf("err = %v, want terminal naming %s", err, dst)
			}
			if got := inode(t, dst); got != ino {
				t.Errorf("%s replaced: inode %d -> %d", dst, ino, got)
			}
			assertNoTemps(t, dir)
		})
	}
}

// TestLinkNoReplace is the fallback where RENAME_NOREPLACE is missing.
func TestLinkNoReplace(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	for p, b := range map[string]string{src: "new", dst: "old"} {
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := linkNoReplace(src, dst); !errors.Is(err, fs.ErrExist) {
		t.Errorf("onto an existing file: err = %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "old" || !exists(src) {
		t.Errorf("dst = %q, src exists %v after a refused move", b, exists(src))
	}
	os.Remove(dst)
	if err := linkNoReplace(src, dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "new" || exists(src) {
		t.Errorf("dst = %q, src exists %v after the move", b, exists(src))
	}
}

func TestCopyCancelled(t *testing.T) {
	src := makeDisk(t, shmDir(t), "disk-0", "raw", 0)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := copyVerified(ctx, src.Path, filepath.Join(dir, "d"), ""); err == nil {
		t.Fatal("copy with a cancelled context succeeded")
	}
	assertNoTemps(t, dir)
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestVirtioDev(t *testing.T) {
	for i, want := range map[int]string{0: "vda", 1: "vdb", 25: "vdz", 26: "vdaa", 27: "vdab", 51: "vdaz", 52: "vdba", 701: "vdzz", 702: "vdaaa"} {
		if got := virtioDev(i); got != want {
			t.Errorf("virtioDev(%d) = %s, want %s", i, got, want)
		}
	}
}
