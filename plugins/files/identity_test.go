package files

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hypersdk/hyperagent/plugins"
)

// TestRewriteInPlaceIsSeen: a disk rewritten in place with its size and
// mtime set back moves the VM's fingerprint and is hashed again: the
// change time and inode, which nobody can set back, are part of both.
func TestRewriteInPlaceIsSeen(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "web.vmdk")
	qemuImg(t, "create", "-q", "-f", "vmdk", disk, "1M")
	s := newTestSource(t, dir)
	ctx := context.Background()
	observe := func() plugins.VMObservation {
		t.Helper()
		r, err := s.ObserveVMs(ctx, plugins.ObserveVMsRequest{VMs: []plugins.VMQuery{{Address: "m", Path: "web.vmdk"}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.VMs["m"]
	}
	before := observe()
	sum1, err := s.cache.sum(ctx, disk, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(disk)
	if err != nil {
		t.Fatal(err)
	}
	// Same size, other bytes, the mtime put back.
	b, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(disk, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(disk, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if after := observe(); after.Fingerprint == before.Fingerprint {
		t.Errorf("fingerprint unchanged after a rewrite in place: %s", after.Fingerprint)
	}
	sum2, err := s.cache.sum(ctx, disk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum2 == sum1 {
		t.Errorf("the hash cache returned the old digest for rewritten content")
	}
}
