package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// Leases decide who may move a job out of processing/.
//
// The invariant: the manifest at processing/<name> is moved (to processed/,
// failed/, or back to to_be_processed/) only by the holder of its lease
// L = processing/.<name>.lease, or by the one worker that took L away by
// renaming it to a tombstone (.<name>.lease.<token>.<why>). Hence:
//
//   - L is only ever created by link(2) of a complete temp file, which
//     fails when L exists: of several workers, one creates it. A claimer
//     creates L before it renames the manifest in (claim.go), so a job it
//     claimed is never without one.
//   - Nobody but its holder writes or removes L. Another worker takes L
//     away only after judging it stale (mtime older than Config.Lease), by
//     a rename, which one worker wins; it then checks that the file it got
//     is the very one it judged (same inode) and still stale, and
//     otherwise puts it back untouched (reclaim.go). A take-back therefore
//     never acts on a look that a newer claim has overtaken.
//   - The holder renews L through the descriptor it created it with
//     (utimensat on the fd, never by path), and holds the job only while L
//     is still that file. A holder that finds L gone or replaced has lost
//     the job: it cancels it at once (killing its qemu-img), removes only
//     its own files (every temp name carries the claim's token), never
//     recreates L and never moves the manifest. To move the manifest
//     itself (finish, hand back) it first seals L: renames it to its own
//     tombstone, which succeeds only while L is still its file.
//   - A job without L (put in processing/ by another daemon, or left by a
//     worker that died while moving it) is taken back only by the worker
//     that creates L for it, once the manifest was renamed in longer than
//     Lease ago and no fresh tombstone says another worker is moving it.
//     Tombstones are made fresh (mtime now) when taken.
//
// Liveness: the holder renews every Lease/8 from a goroutine of its own
// that shares no lock with the conversion, so a live holder loses a lease
// only if its process makes no progress for seven renewal periods in a row
// (SIGSTOP, a frozen VM, a filesystem blocking metadata writes that long):
// Lease must exceed the longest such stall. Ages compare L's mtime (the
// holder's clock) with the reader's clock: hosts sharing a directory need
// NTP.

// renewals is how many times per Lease period a holder renews its lease.
const renewals = 8

// errLost says another worker took a job back from this one.
var errLost = errors.New("lease lost: another worker took the job back")

// lease is a lease this worker created and holds.
type lease struct {
	path  string   // processing/.<name>.lease
	token string   // unique to the claim; in temp names and L's content
	f     *os.File // the file created as L; renewed through it
}

func (w *Worker) leasePath(name string) string {
	return w.dir(protocol.DirProcessing, protocol.LeaseName(name))
}

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// createLease creates the lease of processing/<name> for a new claim. It
// fails with an error matching os.ErrExist when the lease exists.
func (w *Worker) createLease(name string) (*lease, error) {
	l := &lease{path: w.leasePath(name), token: newToken()}
	tmp := l.path + "." + l.token + ".new"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if _, err := f.Write(protocol.Lease{Owner: w.owner, Token: l.token}.Marshal()); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := os.Link(tmp, l.path); err != nil {
		// Over NFS a retransmitted LINK can report EEXIST for a link that
		// was made: the link count tells.
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) != nil || st.Nlink != 2 {
			f.Close()
			return nil, err
		}
	}
	l.f = f
	if err := fsutil.SyncDir(filepath.Dir(l.path)); err != nil {
		w.log.Warn("lease: sync processing/", "error", err)
	}
	return l, nil
}

// held reports whether l is still the job's lease: errLost when it is gone
// or another file; another error when that cannot be told now.
func (l *lease) held() error {
	mine, err := l.f.Stat()
	if err != nil {
		return err
	}
	cur, err := os.Stat(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w (its lease was taken away)", errLost)
	}
	if err != nil {
		return err
	}
	if !os.SameFile(mine, cur) {
		b, _ := os.ReadFile(l.path)
		return fmt.Errorf("%w (the lease is now %q)", errLost, strings.TrimSpace(string(b)))
	}
	return nil
}

// renew sets l's mtime to now through its descriptor: a lease taken away
// meanwhile is not recreated, and another claim's lease is never touched.
func (l *lease) renew() error {
	if err := futimens(l.f, time.Now()); err != nil {
		return fmt.Errorf("renew lease %s: %w", l.path, err)
	}
	return nil
}

// futimens sets f's access and modification times: utimensat(2) with a
// NULL path, which acts on the descriptor itself and needs no /proc (x/sys
// offers only Futimes, which goes through /proc/self/fd).
func futimens(f *os.File, t time.Time) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// seal takes l away from processing/ by renaming it to a tombstone of
// this claim, before the holder moves the manifest: from then on no other
// worker can take the job back (a take-back needs L), and a worker that
// finds the job without L sees the fresh tombstone and keeps off. It
// returns the tombstone, which the caller removes once the manifest moved.
// errLost means the lease was no longer ours: whatever was renamed is put
// back.
func (l *lease) seal(why string) (string, error) {
	if err := l.held(); err != nil { // known lost: do not touch the new holder's lease
		return "", err
	}
	tomb := l.path + "." + l.token + "." + why
	if err := os.Rename(l.path, tomb); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w (its lease was taken away)", errLost)
		}
		return "", err
	}
	mine, err := l.f.Stat()
	got, gerr := os.Stat(tomb)
	if err == nil && gerr == nil && os.SameFile(mine, got) {
		futimens(l.f, time.Now()) // fresh while the manifest moves; best effort
		return tomb, nil
	}
	// Another claim's lease: give it back as it was.
	os.Link(tomb, l.path)
	os.Remove(tomb)
	return "", fmt.Errorf("%w (the lease belongs to another claim)", errLost)
}

// drop gives up a lease whose job this worker never moved in or has moved
// on: the lease is sealed and its tombstone removed.
func (l *lease) drop() {
	if tomb, err := l.seal("drop"); err == nil {
		os.Remove(tomb)
	}
	l.close()
}

func (l *lease) close() {
	if l.f != nil {
		l.f.Close()
	}
}

// renewEvery is the holder's renewal period.
func (w *Worker) renewEvery() time.Duration { return w.cfg.Lease / renewals }

// keepLease renews c's lease until ctx ends. When the lease is lost, or the
// manifest left processing/ without this worker moving it, it cancels the
// job with an errLost cause.
func (w *Worker) keepLease(ctx context.Context, c *claim, cancel context.CancelCauseFunc) {
	t := time.NewTicker(w.renewEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.stillOwner(c); errors.Is(err, errLost) {
			cancel(err)
			return
		} else if err != nil {
			w.log.Warn("lease check", "job", c.id, "error", err)
		}
		if err := c.lease.renew(); err != nil {
			w.log.Warn("lease", "job", c.id, "error", err)
		}
	}
}

// stillOwner checks that c's manifest is where this worker put it and
// that c's lease is still the job's.
func (w *Worker) stillOwner(c *claim) error {
	if _, err := os.Lstat(w.dir(protocol.DirProcessing, c.name)); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w (the manifest left processing/)", errLost)
	}
	return c.lease.held()
}

// changed is when a file was last renamed or written (ctime).
func changed(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return fi.ModTime()
}
