package worker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSyncLoop: each tick fdatasyncs the file; a file not created yet is
// skipped; a sync that fails (fdatasync on /dev/null is EINVAL) ends the
// loop with that error, which the conversion must not drop; no sync is
// made while the file has not grown by the minimum (so /dev/null, size 0,
// is then never synced and raises no error).
func TestSyncLoop(t *testing.T) {
	dir := t.TempDir()
	written := filepath.Join(dir, "out.part")
	if err := os.WriteFile(written, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		minBytes   int64
		wantErr    string
	}{
		{"written", written, 0, ""},
		{"not-yet-created", filepath.Join(dir, "absent.part"), 0, ""},
		{"sync-fails", "/dev/null", 0, "fdatasync /dev/null during the conversion"},
		{"below-minimum", "/dev/null", 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tick := make(chan time.Time)
			done := make(chan struct{})
			result := make(chan error, 1)
			go func() { result <- syncLoop(tt.path, tt.minBytes, tick, done) }()
			for range 3 {
				select {
				case tick <- time.Now(): // received: this tick's sync runs before the next select
				case err := <-result:
					if tt.wantErr == "" {
						t.Fatalf("loop ended early: %v", err)
					}
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("err = %v, want %q", err, tt.wantErr)
					}
					return
				}
			}
			close(done)
			if err := <-result; tt.wantErr != "" || err != nil {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
