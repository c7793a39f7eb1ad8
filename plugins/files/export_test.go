package files

import (
	"archive/tar"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hypersdk/hyperagent/plugins"
)

type progressLog struct {
	mu    sync.Mutex
	items map[string]plugins.ProgressEvent
}

func (p *progressLog) fn(e plugins.ProgressEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.items == nil {
		p.items = map[string]plugins.ProgressEvent{}
	}
	p.items[e.Item] = e
}

func TestExportOVFInPlace(t *testing.T) {
	root := t.TempDir()
	dir := writeOVFDir(t, root, webSpec())
	s := newTestSource(t, root)
	exportDir := t.TempDir()
	var prog progressLog
	r, err := s.Export(context.Background(), plugins.ExportRequest{Address: "m", VM: "web-01", Dir: exportDir, Progress: prog.fn})
	if err != nil {
		t.Fatal(err)
	}
	res := r.Export
	d1, d2 := filepath.Join(dir, "web-01-disk1.vmdk"), filepath.Join(dir, "web-01-disk2.vmdk")
	wantDisks := []plugins.Disk{
		{ID: "vmdisk1", Path: d1, Format: "vmdk", Size: size(t, d1), SHA256: sha(t, d1), BootOrder: 0, Label: "Hard disk 2", CapacityBytes: 16 << 20},
		{ID: "vmdisk2", Path: d2, Format: "vmdk", Size: size(t, d2), SHA256: sha(t, d2), BootOrder: 1, Label: "Hard disk 1", CapacityBytes: 32 << 20},
	}
	if diff := cmp.Diff(wantDisks, res.Disks); diff != "" {
		t.Errorf("disks (-want +got):\n%s", diff)
	}
	var names []string
	for _, f := range res.Files {
		names = append(names, filepath.Base(f.Path))
		if f.SHA256 != sha(t, f.Path) || f.Size != size(t, f.Path) {
			t.Errorf("%s: recorded %d bytes sha256 %s", f.Path, f.Size, f.SHA256)
		}
	}
	if diff := cmp.Diff([]string{"web-01.ovf", "web-01.mf", "web-01-disk1.vmdk", "web-01-disk2.vmdk"}, names); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if res.Dir != dir || res.ExportedAt.IsZero() || res.Fingerprint == "" {
		t.Errorf("result dir %s, exported at %v, fingerprint %q", res.Dir, res.ExportedAt, res.Fingerprint)
	}
	if diff := cmp.Diff(wantWebFacts(), res.Facts); diff != "" {
		t.Errorf("facts (-want +got):\n%s", diff)
	}
	if ents, _ := os.ReadDir(exportDir); len(ents) != 0 {
		t.Errorf("export of an OVF directory wrote %d files into the export dir", len(ents))
	}
	if e := prog.items["web-01-disk1.vmdk"]; e.Done != e.Total || e.Total != size(t, d1) {
		t.Errorf("progress for disk1 = %+v", e)
	}
	// The result is recorded in state as JSON.
	if _, err := json.Marshal(res); err != nil {
		t.Fatal(err)
	}
}

func TestExportOVFManifestMismatch(t *testing.T) {
	root := t.TempDir()
	dir := writeOVFDir(t, root, webSpec())
	mf := filepath.Join(dir, "web-01.mf")
	b, _ := os.ReadFile(mf)
	writeFile(t, mf, strings.Replace(string(b), "SHA256(web-01-disk1.vmdk)= ", "SHA256(web-01-disk1.vmdk)= 00", 1))
	s := newTestSource(t, root)
	_, err := s.Export(context.Background(), plugins.ExportRequest{Address: "m", VM: "web-01", Dir: t.TempDir(), Progress: func(plugins.ProgressEvent) {}})
	if err == nil || !plugins.IsTerminal(err) || !strings.Contains(err.Error(), "manifest") {
		t.Errorf("err = %v, want a terminal manifest mismatch", err)
	}
}

func TestOVA(t *testing.T) {
	root := t.TempDir()
	spec := webSpec()
	spec.EFI = true
	src := writeOVFDir(t, t.TempDir(), spec)
	ova := filepath.Join(root, "web-01.ova")
	ovaFromDir(t, src, ova, spec)
	s := newTestSource(t, root)
	ctx := context.Background()

	r, err := s.ObserveVMs(ctx, plugins.ObserveVMsRequest{VMs: []plugins.VMQuery{{Address: "m", Path: "web-01.ova"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := wantWebFacts()
	want.Firmware = "uefi"
	o := r.VMs["m"]
	if diff := cmp.Diff(plugins.VMObservation{Found: true, Fingerprint: o.Fingerprint, Facts: want}, o); diff != "" {
		t.Errorf("observation (-want +got):\n%s", diff)
	}
	if n := s.cache.hashed.Load(); n != 0 {
		t.Errorf("observing an OVA hashed %d files; its members are hashed when unpacked", n)
	}

	exportDir := filepath.Join(t.TempDir(), "m")
	for attempt := 0; attempt < 2; attempt++ { // a second export redoes the same
		er, err := s.Export(ctx, plugins.ExportRequest{Address: "m", VM: "web-01.ova", Dir: exportDir, Progress: func(plugins.ProgressEvent) {}})
		if err != nil {
			t.Fatal(err)
		}
		res := er.Export
		if res.Dir != exportDir || res.Fingerprint != o.Fingerprint {
			t.Errorf("dir %s fingerprint %s; want %s %s", res.Dir, res.Fingerprint, exportDir, o.Fingerprint)
		}
		if diff := cmp.Diff(want, res.Facts); diff != "" {
			t.Errorf("facts (-want +got):\n%s", diff)
		}
		if len(res.Disks) != 2 {
			t.Fatalf("disks = %+v", res.Disks)
		}
		for i, d := range res.Disks {
			orig := filepath.Join(src, filepath.Base(d.Path))
			if filepath.Dir(d.Path) != exportDir || d.SHA256 != sha(t, orig) || d.SHA256 != sha(t, d.Path) || d.BootOrder != i || d.Format != "vmdk" {
				t.Errorf("disk %d = %+v", i, d)
			}
			qemuImg(t, "check", d.Path)
		}
		ents, _ := os.ReadDir(exportDir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if diff := cmp.Diff([]string{"web-01-disk1.vmdk", "web-01-disk2.vmdk", "web-01.mf", "web-01.ovf"}, names); diff != "" {
			t.Errorf("unpacked (-want +got):\n%s", diff)
		}
	}
	if !fileExists(ova) {
		t.Errorf("the OVA was removed")
	}
}

func TestHostileOVA(t *testing.T) {
	ovfBody := []byte(webSpec().XML())
	good := tarMember{hdr: tar.Header{Name: "web-01.ovf", Typeflag: tar.TypeReg}, body: ovfBody}
	tests := map[string][]tarMember{
		"parent path":   {good, {hdr: tar.Header{Name: "../x", Typeflag: tar.TypeReg}, body: []byte("x")}},
		"nested parent": {good, {hdr: tar.Header{Name: "a/../../x", Typeflag: tar.TypeReg}, body: []byte("x")}},
		"absolute path": {good, {hdr: tar.Header{Name: "/etc/x", Typeflag: tar.TypeReg}, body: []byte("x")}},
		"symlink":       {good, {hdr: tar.Header{Name: "web-01-disk1.vmdk", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}},
		"hardlink":      {good, {hdr: tar.Header{Name: "web-01-disk1.vmdk", Typeflag: tar.TypeLink, Linkname: "web-01.ovf"}}},
		"char device":   {good, {hdr: tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}},
		"fifo":          {good, {hdr: tar.Header{Name: "pipe", Typeflag: tar.TypeFifo}}},
		"duplicate":     {good, good},
	}
	for name, members := range tests {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeOVA(t, filepath.Join(root, "bad.ova"), members)
			s := newTestSource(t, root)
			r, err := s.ObserveVMs(context.Background(), plugins.ObserveVMsRequest{VMs: []plugins.VMQuery{{Address: "m", Path: "bad.ova"}}})
			if err != nil {
				t.Fatal(err)
			}
			if f := r.VMs["m"].Findings; len(f) != 1 || f[0].Severity != plugins.SeverityError {
				t.Errorf("findings = %+v, want one error", f)
			}
			parent := t.TempDir()
			exportDir := filepath.Join(parent, "export")
			_, err = s.Export(context.Background(), plugins.ExportRequest{Address: "m", VM: "bad.ova", Dir: exportDir, Progress: func(plugins.ProgressEvent) {}})
			if err == nil || !plugins.IsTerminal(err) {
				t.Fatalf("Export: err = %v, want terminal refusal", err)
			}
			// Nothing written, neither beside the export dir nor in it.
			var written []string
			filepath.Walk(parent, func(p string, fi os.FileInfo, err error) error {
				if p != parent && p != exportDir {
					written = append(written, p)
				}
				return nil
			})
			if diff := cmp.Diff([]string(nil), written, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("files written by a refused unpack:\n%s", diff)
			}
		})
	}
}

func TestUnpackRemovesTempsOnFailure(t *testing.T) {
	root := t.TempDir()
	spec := webSpec()
	src := writeOVFDir(t, t.TempDir(), spec)
	ova := filepath.Join(root, "web-01.ova")
	ovaFromDir(t, src, ova, spec)
	idx, err := readOVAIndex(context.Background(), ova)
	if err != nil {
		t.Fatal(err)
	}
	// The OVA changes between reading its index and unpacking it.
	idx.Members["web-01-disk2.vmdk"]++
	dir := t.TempDir()
	if _, err := unpackOVA(context.Background(), ova, dir, idx, func(string, int64, int64) {}); err == nil {
		t.Fatal("unpack of a changed OVA succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d files left after a failed unpack", len(ents))
	}
}

func size(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
