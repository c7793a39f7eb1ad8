package fswatch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// calls collects what changed was called with.
type calls struct {
	mu  sync.Mutex
	got []Trigger
	at  []time.Time // when each call came
	ch  chan Trigger
}

func newCalls() *calls { return &calls{ch: make(chan Trigger, 100)} }

func (c *calls) changed(t Trigger) {
	c.mu.Lock()
	c.got, c.at = append(c.got, t), append(c.at, time.Now())
	c.mu.Unlock()
	c.ch <- t
}

func (c *calls) count() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.got) }

// wait returns the next call, failing after a generous bound (a missing
// call is the failure; the bound only keeps a broken loop from hanging).
func (c *calls) wait(t *testing.T, what string) Trigger {
	t.Helper()
	select {
	case tr := <-c.ch:
		return tr
	case <-time.After(10 * time.Second):
		t.Fatalf("no call after %s", what)
		return ""
	}
}

func start(t *testing.T, o Options) *calls {
	t.Helper()
	c := newCalls()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Watch(ctx, o, c.changed) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	time.Sleep(50 * time.Millisecond) // let the watches be added
	return c
}

func write(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBurstIsOneCall: 1,000 files landing at once (a converter finishing a
// wave) are one or two calls, not 1,000.
func TestBurstIsOneCall(t *testing.T) {
	dir := t.TempDir()
	c := start(t, Options{Dirs: []string{dir}, Debounce: 100 * time.Millisecond, MaxDelay: 5 * time.Second})
	for i := range 1000 {
		write(t, filepath.Join(dir, fmt.Sprintf("job-%04d.json", i)))
	}
	if tr := c.wait(t, "a burst"); tr != TriggerEvents {
		t.Fatalf("trigger %s, want events", tr)
	}
	time.Sleep(300 * time.Millisecond)
	if n := c.count(); n < 1 || n > 2 {
		t.Errorf("%d calls for a burst of 1000, want 1 or 2", n)
	}
}

// TestMaxDelayBoundsAStream: events that never pause still call at the
// latest MaxDelay after the first.
func TestMaxDelayBoundsAStream(t *testing.T) {
	dir := t.TempDir()
	c := start(t, Options{Dirs: []string{dir}, Debounce: 200 * time.Millisecond, MaxDelay: 400 * time.Millisecond})
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), nil, 0o644)
			}
		}
	}()
	defer close(stop)
	c.wait(t, "a stream that never settles")
}

// TestLeadingCallsAtOnce: with Leading, one change calls at once, not
// after the quiet time (30 s here, beyond wait's bound).
func TestLeadingCallsAtOnce(t *testing.T) {
	dir := t.TempDir()
	c := start(t, Options{Dirs: []string{dir}, Debounce: 30 * time.Second, Leading: true})
	write(t, filepath.Join(dir, "job.json"))
	if tr := c.wait(t, "one change"); tr != TriggerEvents {
		t.Fatalf("trigger %s, want events", tr)
	}
}

// TestLeadingThrottlesAStream: with Leading, a stream of events (one per
// 10 ms for about a second) makes about one call per Debounce, not one per
// event, and the events after the last call are not lost: a call comes
// after the stream's last write, within the window.
func TestLeadingThrottlesAStream(t *testing.T) {
	dir := t.TempDir()
	const window = 250 * time.Millisecond
	c := start(t, Options{Dirs: []string{dir}, Debounce: window, Leading: true})
	first := time.Now()
	for i := range 100 {
		write(t, filepath.Join(dir, fmt.Sprintf("f%d", i)))
		time.Sleep(10 * time.Millisecond)
	}
	last := time.Now() // after the last write
	c.wait(t, "a stream")
	var after []time.Time
	for deadline := last.Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		c.mu.Lock()
		after = after[:0]
		for _, at := range c.at {
			if at.After(last) {
				after = append(after, at)
			}
		}
		c.mu.Unlock()
		if len(after) > 0 {
			break
		}
	}
	if len(after) == 0 {
		t.Fatal("no call after the stream's last write: its last events were lost")
	}
	// However long the stream took (a loaded machine stretches it), at
	// most one call per window, the first at once and one trailing.
	if n, most := c.count(), int(last.Sub(first)/window)+2; n < 2 || n > most {
		t.Errorf("%d calls for a %v stream with a %v window, want 2 to %d", n, last.Sub(first).Round(time.Millisecond), window, most)
	}
}

// TestUrgentCallsWithinTheWindow: with Leading and a window longer than
// wait's bound, an event on an urgent path still calls at once, while an
// ordinary event in the window waits for its end.
func TestUrgentCallsWithinTheWindow(t *testing.T) {
	dir := t.TempDir()
	urgent := func(path string) bool { return filepath.Base(path) == "landed" }
	c := start(t, Options{Dirs: []string{dir}, Debounce: 30 * time.Second, Leading: true, Urgent: urgent})
	write(t, filepath.Join(dir, "first"))
	c.wait(t, "the first change (leading edge)")
	write(t, filepath.Join(dir, "ordinary"))
	time.Sleep(200 * time.Millisecond)
	if n := c.count(); n != 1 {
		t.Fatalf("%d calls after an ordinary event inside the window, want 1 (it waits for the window)", n)
	}
	write(t, filepath.Join(dir, "landed"))
	if tr := c.wait(t, "an urgent event inside the window"); tr != TriggerEvents {
		t.Fatalf("trigger %s, want events", tr)
	}
}

func TestIgnoredAndRecursive(t *testing.T) {
	root := t.TempDir()
	c := start(t, Options{Dirs: []string{root}, Recursive: true, Ignore: Hidden, Debounce: 20 * time.Millisecond})
	write(t, filepath.Join(root, ".job.json.tmp"))
	time.Sleep(200 * time.Millisecond)
	if n := c.count(); n != 0 {
		t.Fatalf("%d calls for a hidden file, want none", n)
	}
	sub := filepath.Join(root, "processed", "2026-12-01")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	c.wait(t, "a new directory")
	time.Sleep(100 * time.Millisecond) // its watch is added on the create event
	write(t, filepath.Join(sub, "job.json.report.json"))
	c.wait(t, "a file in a new subdirectory")
}

// TestDirThatAppearsLater: a directory that does not exist yet is
// watched once it does (found by the resync).
func TestDirThatAppearsLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "queue")
	c := start(t, Options{Dirs: []string{dir}, Resync: 200 * time.Millisecond, Debounce: 20 * time.Millisecond})
	if tr := c.wait(t, "the first resync"); tr != TriggerResync {
		t.Fatalf("trigger %s, want resync", tr)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for tr := c.wait(t, "a resync"); tr != TriggerResync; tr = c.wait(t, "a resync") {
	}
	write(t, filepath.Join(dir, "job.json"))
	for {
		if tr := c.wait(t, "an event in the new directory"); tr == TriggerEvents {
			return
		}
	}
}

// TestResyncOnly: with no events (NFS), only the resync calls.
func TestResyncOnly(t *testing.T) {
	dir := t.TempDir()
	c := start(t, Options{Dirs: []string{dir}, NoEvents: true, Resync: 150 * time.Millisecond})
	write(t, filepath.Join(dir, "job.json"))
	for range 2 {
		if tr := c.wait(t, "a resync"); tr != TriggerResync {
			t.Fatalf("trigger %s, want only resyncs", tr)
		}
	}
}

func TestEventsDeliveredLocal(t *testing.T) {
	if fsType, ok := EventsDelivered(t.TempDir()); !ok || fsType == "" {
		t.Errorf("a local temp dir: %q %v, want events delivered", fsType, ok)
	}
}
