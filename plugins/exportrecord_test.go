package plugins

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExportRecord: the record says an export is whole while every file
// it lists is there at its size; once one is short or gone, or the record
// was forgotten (a new export started), there is nothing to adopt.
func TestExportRecord(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk-0.vmdk")
	if err := os.WriteFile(disk, []byte("disk bytes"), 0o640); err != nil {
		t.Fatal(err)
	}
	res := ExportResult{Dir: dir, Fingerprint: "vm-1@7", Files: []File{{Path: disk, Size: 10, SHA256: "x"}},
		Disks: []Disk{{ID: "disk-0", Path: disk, Size: 10}}}
	written, err := WriteExportRecord(dir, res)
	if err != nil || len(written.Files) != 2 {
		t.Fatalf("WriteExportRecord: %+v, %v", written, err)
	}
	got, ok, err := ReadExportRecord(dir)
	if err != nil || !ok || got.Fingerprint != "vm-1@7" || len(got.Files) != 2 || got.Files[1] != written.Files[1] {
		t.Fatalf("ReadExportRecord = %+v, %v, %v", got, ok, err)
	}
	if err := os.WriteFile(disk, []byte("short"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ReadExportRecord(dir); ok {
		t.Error("a short disk was taken for a whole export")
	}
	if err := ForgetExportRecord(dir); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := ReadExportRecord(dir); ok || err != nil {
		t.Errorf("after forgetting: %v, %v", ok, err)
	}
}
