package files

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// watcher runs s.watch until the test ends and hands out its reports.
type watcher struct {
	t       *testing.T
	changed chan struct{}
	every   time.Duration // how often a wait pokes again
	n       int
}

func startWatch(t *testing.T, s *Source, o watchOptions) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	// Poke again only after a report had time to come; with events the
	// resync is out of reach, so only events can answer.
	w := &watcher{t: t, changed: make(chan struct{}, 64), every: 4 * o.resync}
	if o.events {
		w.every = 4 * o.debounce
	}
	done := make(chan error, 1)
	go func() { done <- s.watch(ctx, func() { w.changed <- struct{}{} }, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	})
	return w
}

// wait pokes until a change is reported. The watch starts asynchronously,
// so a first poke may land before it looks; each poke changes something.
func (w *watcher) wait(what string, poke func(n int)) {
	w.t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	w.n++
	poke(w.n)
	for {
		select {
		case <-w.changed:
			return
		case <-tick.C:
			w.n++
			poke(w.n)
		case <-deadline:
			w.t.Fatalf("no change reported after %s", what)
		}
	}
}

// quiet drains reports until none came for a while, so that a report still
// on its way from an earlier poke cannot answer the next wait.
func (w *watcher) quiet() {
	for {
		select {
		case <-w.changed:
		case <-time.After(w.every):
			return
		}
	}
}

func TestWatchEvents(t *testing.T) {
	root := t.TempDir()
	existing := filepath.Join(root, "vm-a")
	mkdir(t, existing)
	// A resync of an hour: every report here comes from an event.
	w := startWatch(t, newTestSource(t, root), watchOptions{debounce: 50 * time.Millisecond, resync: time.Hour, events: true})

	w.wait("a new OVA", func(n int) { writeFile(t, filepath.Join(root, "new.ova"), fmt.Sprint(n)) })
	w.quiet()
	w.wait("a file in an OVF directory", func(n int) { writeFile(t, filepath.Join(existing, "vm-a.ovf"), fmt.Sprint(n)) })
	w.quiet()
	var newDir string
	w.wait("a new directory", func(n int) {
		newDir = filepath.Join(root, fmt.Sprintf("vm-new-%d", n))
		mkdir(t, newDir)
	})
	w.quiet()
	w.wait("a file in a new OVF directory", func(n int) { writeFile(t, filepath.Join(newDir, "vm.ovf"), fmt.Sprint(n)) })
	w.quiet()
	// Directories made in one go: only the top one gives an event, the
	// rescan it causes watches the others.
	deep := filepath.Join(root, "site", "rack", "vm-b")
	w.wait("a new directory tree", func(int) { mkdir(t, deep) })
	w.quiet()
	w.wait("a file deep in a new tree", func(n int) { writeFile(t, filepath.Join(deep, "vm-b.ovf"), fmt.Sprint(n)) })
	w.quiet()
	w.wait("a removed directory", func(int) { os.RemoveAll(filepath.Join(root, "site")) })
}

// TestWatchRescanOnly is the NFS case: no events, the walk alone notices.
func TestWatchRescanOnly(t *testing.T) {
	root := t.TempDir()
	w := startWatch(t, newTestSource(t, root), watchOptions{debounce: time.Hour, resync: 20 * time.Millisecond, events: false})
	deep := filepath.Join(root, "exports", "vm-c")
	w.wait("a file in a new directory tree", func(n int) {
		mkdir(t, deep)
		writeFile(t, filepath.Join(deep, "vm-c.ova"), fmt.Sprint(n))
	})
	w.quiet()
	w.wait("a changed file", func(n int) { writeFile(t, filepath.Join(deep, "vm-c.ova"), fmt.Sprintf("longer %d", n)) })
}

func TestWatchMissingDir(t *testing.T) {
	s := newTestSource(t, filepath.Join(t.TempDir(), "nope"))
	err := s.Watch(context.Background(), func() { t.Error("changed called") })
	if err == nil {
		t.Fatal("Watch of a missing dir returned nil")
	}
}

// TestTreeScan checks what a walk counts as a change.
func TestTreeScan(t *testing.T) {
	root := t.TempDir()
	ova := filepath.Join(root, "a.ova")
	writeFile(t, ova, "a")
	mkdir(t, filepath.Join(root, "vm", "nested"))
	writeFile(t, filepath.Join(root, "vm", "nested", "d.vmdk"), "d")
	tr := &tree{root: root}
	if _, err := tr.scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	steps := []struct {
		name  string
		do    func()
		moved bool
	}{
		{"nothing", func() {}, false},
		{"mtime deep down", func() { chtimes(t, filepath.Join(root, "vm", "nested", "d.vmdk"), later) }, true},
		{"mtime", func() { writeFile(t, ova, "b"); chtimes(t, ova, later) }, true},
		{"content only", func() { writeFile(t, ova, "c"); chtimes(t, ova, later) }, false},
		{"size", func() { writeFile(t, ova, "cc"); chtimes(t, ova, later) }, true},
		{"hidden file", func() { writeFile(t, filepath.Join(root, "vm", ".hashes.json"), "{}") }, false},
		{"hidden dir", func() {
			mkdir(t, filepath.Join(root, ".tmp", "x"))
			writeFile(t, filepath.Join(root, ".tmp", "x", "y"), "y")
		}, false},
		{"new empty dir", func() { mkdir(t, filepath.Join(root, "vm2")) }, true},
		{"rename", func() { mustRename(t, ova, filepath.Join(root, "b.ova")) }, true},
	}
	for _, st := range steps {
		scanStep(t, tr, st.name, st.do, st.moved)
	}
	scanStep(t, tr, "remove a tree", func() { os.RemoveAll(filepath.Join(root, "vm")) }, true)
	scanStep(t, tr, "the tree again", func() { mkdir(t, filepath.Join(root, "vm", "nested")) }, true)
}

func scanStep(t *testing.T, tr *tree, name string, do func(), wantMoved bool) {
	t.Helper()
	do()
	moved, err := tr.scan(context.Background())
	if err != nil || moved != wantMoved {
		t.Errorf("%s: moved = %v, %v; want %v", name, moved, err, wantMoved)
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func chtimes(t *testing.T, p string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(p, at, at); err != nil {
		t.Fatal(err)
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}
