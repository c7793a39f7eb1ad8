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
// loop with that error, which the conversion must not drop.
func TestSyncLoop(t *testing.T) {
	dir := t.TempDir()
	written := filepath.Join(dir, "out.part")
	if err := os.WriteFile(written, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"written", written, ""},
		{"not-yet-created", filepath.Join(dir, "absent.part"), ""},
		{"sync-fails", "/dev/null", "fdatasync /dev/null during the conversion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tick := make(chan time.Time)
			done := make(chan struct{})
			result := make(chan error, 1)
			go func() { result <- syncLoop(tt.path, tick, done) }()
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
