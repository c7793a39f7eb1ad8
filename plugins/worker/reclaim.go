package worker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// Taking jobs back from dead owners, under the rules in lease.go.

// reclaimStale hands back every job in processing/ whose lease is stale,
// or that has no lease and was renamed in longer than Lease ago, and
// removes stale leases and tombstones whose job is gone.
func (w *Worker) reclaimStale() {
	entries, err := os.ReadDir(w.dir(protocol.DirProcessing))
	if err != nil {
		w.log.Error("reclaim: read processing/", "error", err)
		return
	}
	jobs := map[string]bool{}
	for _, e := range entries {
		if _, _, ok := protocol.JobFile(e.Name()); ok { // any kind: a symlink claimed is a job too
			jobs[e.Name()] = true
		}
	}
	for name := range jobs {
		if w.holds(name) {
			continue
		}
		p := w.leasePath(name)
		seen, err := os.Stat(p)
		switch {
		case err == nil:
			if time.Since(seen.ModTime()) <= w.cfg.Lease {
				continue
			}
			w.testHook("stale", name)
			tomb, ok := w.takeAway(p, seen)
			if !ok {
				continue
			}
			w.handBackTaken(name, time.Since(seen.ModTime()))
			os.Remove(tomb)
		case errors.Is(err, os.ErrNotExist):
			w.reclaimLeaseless(name)
		}
	}
	w.removeOrphans(entries, jobs)
	w.testHook("pass", "")
}

// takeAway renames the lease at p, judged stale as seen, to a tombstone of
// this worker. It reports false when the lease is no longer the one judged
// (another worker took it, or a new claim made a new one) or was renewed
// since: a lease taken by mistake is put back as it was. Only the winner
// of the rename may move the job.
func (w *Worker) takeAway(p string, seen os.FileInfo) (string, bool) {
	if now, err := os.Stat(p); err != nil || !os.SameFile(now, seen) || time.Since(now.ModTime()) <= w.cfg.Lease {
		return "", false
	}
	tomb := p + "." + newToken() + ".taken"
	if err := os.Rename(p, tomb); err != nil {
		return "", false
	}
	got, err := os.Stat(tomb)
	if err == nil && os.SameFile(got, seen) && time.Since(got.ModTime()) > w.cfg.Lease {
		now := time.Now() // a fresh tombstone: this worker is moving the job
		os.Chtimes(tomb, now, now)
		return tomb, true
	}
	if err := os.Link(tomb, p); err != nil {
		w.log.Error("reclaim: could not put back a live lease", "lease", p, "error", err)
	}
	os.Remove(tomb)
	return "", false
}

// reclaimLeaseless takes back a job that sits in processing/ without a
// lease: put there by another daemon, or left by a worker that died while
// moving it. The worker first creates the lease itself (so no claim or
// other take-back can run beside it), then checks again that the manifest
// was renamed in longer than Lease ago and that no fresh tombstone says its
// holder is moving it.
func (w *Worker) reclaimLeaseless(name string) {
	m := w.dir(protocol.DirProcessing, name)
	stale := func() (time.Duration, bool) {
		fi, err := os.Lstat(m)
		if err != nil {
			return 0, false
		}
		age := time.Since(changed(fi))
		return age, age > w.cfg.Lease && !w.freshTombstone(name)
	}
	if _, ok := stale(); !ok {
		return
	}
	l, err := w.createLease(name)
	if err != nil {
		return // another worker holds or is taking it
	}
	defer l.drop()
	age, ok := stale()
	if !ok {
		return
	}
	w.handBackTaken(name, age)
}

func (w *Worker) handBackTaken(name string, age time.Duration) {
	if err := w.handBack(name); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			w.log.Error("reclaim", "name", name, "error", err)
		}
		return
	}
	w.log.Warn("took back a job whose owner's lease expired", "name", name, "lease_age", age.Round(time.Second))
}

// freshTombstone reports whether a lease of processing/<name> was sealed or
// taken away less than Lease ago: someone is moving the job now.
func (w *Worker) freshTombstone(name string) bool {
	tombs, _ := filepath.Glob(w.leasePath(name) + ".*")
	for _, t := range tombs {
		if fi, err := os.Stat(t); err == nil && time.Since(fi.ModTime()) <= w.cfg.Lease {
			return true
		}
	}
	return false
}

// removeOrphans removes leases, tombstones, lease temp files and progress
// files older than Lease whose job is no longer in processing/, and
// progress temp files older than Lease (a writer's lives for a moment). A
// stale lease is taken away first, like any other, so that a lease created
// since the look survives.
func (w *Worker) removeOrphans(entries []os.DirEntry, jobs map[string]bool) {
	for _, e := range entries {
		n := e.Name()
		if name, ok := progressEntry(n); ok {
			fi, err := e.Info()
			if err == nil && time.Since(fi.ModTime()) > w.cfg.Lease && (!jobs[name] || strings.HasSuffix(n, ".tmp")) {
				os.Remove(w.dir(protocol.DirProcessing, n))
			}
			continue
		}
		i := strings.Index(n, ".lease")
		if n == "" || n[0] != '.' || i < 1 || jobs[n[1:i]] {
			continue
		}
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) <= w.cfg.Lease {
			continue
		}
		p := w.dir(protocol.DirProcessing, n)
		if n[i:] == ".lease" {
			if tomb, ok := w.takeAway(p, fi); ok {
				os.Remove(tomb)
			}
			continue
		}
		os.Remove(p)
	}
}
