package files

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/plugins"
)

// TestDiscover: in a tree of exports, an OVF directory is one VM (its
// images are its disks), an OVA is one, a bare image is one unless it is
// the extent of a VMDK descriptor beside it; hidden entries and other
// files are passed over. Folder and patterns select, a VM a migration
// names (as a directory or a file) says which, and facts and findings are
// observation's.
func TestDiscover(t *testing.T) {
	root := t.TempDir()
	web := writeOVFDir(t, filepath.Join(root, "linux"), webSpec())
	ovaFromDir(t, web, filepath.Join(root, "linux", "web-02.ova"), webSpec())
	mkdir(t, filepath.Join(root, "bare"))
	qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(root, "bare", "db-01.qcow2"), "8M")
	qemuImg(t, "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", filepath.Join(root, "bare", "flat.vmdk"), "8M")
	writeFile(t, filepath.Join(root, "bare", "notes.txt"), "not a VM")
	mkdir(t, filepath.Join(root, ".trash"))
	qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(root, ".trash", "old.qcow2"), "8M")
	if err := os.Symlink(filepath.Join(root, "bare", "db-01.qcow2"), filepath.Join(root, "bare", "link.qcow2")); err != nil {
		t.Fatal(err)
	}

	s := newTestSource(t, root)
	ctx := context.Background()
	list := func(r plugins.DiscoverResponse) []string {
		var out []string
		for _, vm := range r.VMs {
			out = append(out, vm.Path+" "+vm.Name+" "+vm.Folder+" "+vm.NamedBy)
		}
		return out
	}
	tests := map[string]struct {
		req  plugins.DiscoverRequest
		want []string
	}{
		"all": {req: plugins.DiscoverRequest{Known: map[string]string{"migration.web": "linux/web-01", "migration.gone": "nowhere.ova"}},
			want: []string{"bare/db-01.qcow2 db-01 bare ", "bare/flat.vmdk flat bare ",
				"linux/web-01/web-01.ovf web-01 linux/web-01 migration.web", "linux/web-02.ova web-02 linux "}},
		"folder": {req: plugins.DiscoverRequest{Folder: "linux"},
			want: []string{"linux/web-01/web-01.ovf web-01 linux/web-01 ", "linux/web-02.ova web-02 linux "}},
		"patterns": {req: plugins.DiscoverRequest{Match: []string{"web-*", "db-0?"}},
			want: []string{"bare/db-01.qcow2 db-01 bare ", "linux/web-01/web-01.ovf web-01 linux/web-01 ", "linux/web-02.ova web-02 linux "}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, err := s.Discover(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, list(res)); diff != "" {
				t.Errorf("VMs (-want +got):\n%s", diff)
			}
		})
	}

	res, err := s.Discover(ctx, plugins.DiscoverRequest{Match: []string{"web-01", "db-01"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantWebFacts(), res.VMs[1].Observation.Facts); diff != "" {
		t.Errorf("OVF facts (-want +got):\n%s", diff)
	}
	db := res.VMs[0].Observation
	if !db.Found || db.Fingerprint == "" || len(db.Facts.Disks) != 1 || db.Facts.Disks[0].CapacityBytes != 8<<20 || db.Facts.Disks[0].Backing != "qcow2" {
		t.Errorf("bare image: %+v", db)
	}
	for _, bad := range []plugins.DiscoverRequest{{Folder: "../.."}, {Match: []string{"["}}} {
		if _, err := s.Discover(ctx, bad); err == nil || !plugins.IsTerminal(err) {
			t.Errorf("%+v: err = %v, want a terminal error", bad, err)
		}
	}
	if _, err := s.Discover(ctx, plugins.DiscoverRequest{Folder: "missing"}); err == nil {
		t.Error("a missing folder is not an error")
	}
}
