package libvirt

import (
	"context"
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
