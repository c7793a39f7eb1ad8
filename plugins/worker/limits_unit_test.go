package worker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReadJobFile: a job file is read only if it is a regular file, never
// through a symlink nor by opening a FIFO (which would block: no writer
// ever comes), and only up to the limit.
func TestReadJobFile(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	must(t, os.WriteFile(p("ok.json"), []byte("0123456789"), 0o644))
	must(t, os.WriteFile(p("big.json"), []byte("01234567890"), 0o644))
	must(t, os.Symlink(p("ok.json"), p("link.json")))
	must(t, unix.Mkfifo(p("fifo.json"), 0o644))
	must(t, os.Mkdir(p("dir.json"), 0o755))
	for name, want := range map[string]string{
		"ok.json":   "",
		"big.json":  "job file is 11 bytes, over the limit of 10 bytes (-max-manifest-bytes)",
		"link.json": "symbolic link",
		"fifo.json": "FIFO",
		"dir.json":  "directory",
		"gone.json": "no such file",
	} {
		done := make(chan struct{})
		var data []byte
		var err error
		go func() { defer close(done); data, err = readJobFile(p(name), 10) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: readJobFile blocked", name)
		}
		switch {
		case want == "" && (err != nil || string(data) != "0123456789"):
			t.Errorf("%s: %q, %v", name, data, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: err %v, want %q", name, err, want)
		}
	}
}
