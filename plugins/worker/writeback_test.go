package worker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestWritebackLoop: writeback is started for what the file grew by since
// the last start, only once that is at least the minimum; a file not
// created yet is skipped until it appears; a file whose stat fails ends
// the loop with that error, which the conversion must not drop.
func TestWritebackLoop(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.part")
	tick := make(chan time.Time)
	done := make(chan struct{})
	result := make(chan error, 1)
	type call struct{ off, n int64 }
	calls := make(chan call, 10)
	go func() {
		result <- writebackLoop(path, 1<<20, tick, done, func(f *os.File, off, n int64) { calls <- call{off, n} })
	}()
	// The loop may still be handling a step's last tick while the file
	// grows, so the file only ever has one of the sizes the test gives it:
	// it appears whole (a rename) and grows by truncate.
	grow := func(size int64) {
		t.Helper()
		if _, err := os.Stat(path); err == nil {
			if err := os.Truncate(path, size); err != nil {
				t.Fatal(err)
			}
			return
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	step := func() { // a tick, then wait until the loop is back in its select
		tick <- time.Now()
		tick <- time.Now()
	}
	var got []call
	drain := func() {
		for {
			select {
			case c := <-calls:
				got = append(got, c)
			default:
				return
			}
		}
	}
	step() // not created yet
	grow(3 << 20)
	step()
	grow(3<<20 + 1000) // grew by less than the minimum
	step()
	grow(5 << 20)
	step()
	close(done)
	if err := <-result; err != nil {
		t.Fatalf("loop: %v", err)
	}
	drain()
	want := []call{{0, 3 << 20}, {3 << 20, 2 << 20}}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(call{})); d != "" {
		t.Errorf("writeback started for (-want +got):\n%s", d)
	}

}
