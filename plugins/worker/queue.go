package worker

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// What the worker does with each entry of to_be_processed/. Nothing stays
// there unseen for good:
//
//   - a dot-file is a submitter's temp file: left alone;
//   - another suffix (not .json, .yaml, .yml) is not a job: left alone,
//     with one warning;
//   - a job suffix on a name that is no job id (a space, a newline, other
//     characters, too long for the lease and clash names the worker makes):
//     no sidecar can be named, so it is moved aside into failed/<date>/
//     under <name, sanitised>.<random>.rejected, which no job file name
//     matches, with one warning; never deleted;
//   - a valid job name is claimed whatever the entry is. A symlink, FIFO or
//     directory then fails with its error sidecar (readJobFile never
//     follows the link nor opens the FIFO), like any bad manifest;
//   - a regular job file that does not parse (for YAML, that is not a valid
//     manifest either: a cut YAML document may still parse) and changed
//     less than Settle ago is left for a later look: a writer that writes
//     in place may not be done. It is looked at again on the next event,
//     rescan, or when it has settled, and then claimed (and failed, if it
//     still does not parse).

// maxJobName bounds a job file name so that every name the worker derives
// from it fits in NAME_MAX (255): a clash name adds 16 bytes, its lease
// tombstone (.<name>.lease.<token>.handback) 33 more, a sidecar's temp file
// (.<name><suffix>.<token>.tmp) 34.
const maxJobName = 200

type entryKind int

const (
	entryIgnored entryKind = iota // dot-file
	entryOther                    // not a job suffix
	entryBadName                  // job suffix, no job id
	entryJob
)

func classify(name string) entryKind {
	switch {
	case strings.HasPrefix(name, "."):
		return entryIgnored
	case !hasJobSuffix(strings.TrimRightFunc(name, unicode.IsSpace)):
		return entryOther
	}
	if _, _, ok := protocol.JobFile(name); !ok || len(name) > maxJobName {
		return entryBadName
	}
	return entryJob
}

func hasJobSuffix(name string) bool {
	for _, ext := range protocol.JobExts {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// queueLook is one look at the queue: which warnings were given (so each
// is given once while its entry stays), and when a job file left for a
// later look has settled.
type queueLook struct {
	warned map[string]bool
	wake   time.Time
}

// warnOnce logs msg for key unless it was logged on the look before.
func (w *Worker) warnOnce(look *queueLook, key, msg string, args ...any) {
	look.warned[key] = true
	if !w.warned[key] {
		w.log.Warn(msg, args...)
	}
}

// endLook keeps the warnings given. After a look over the whole queue,
// only those of entries still there: an entry that comes back later is
// warned about again.
func (w *Worker) endLook(look *queueLook, whole bool) {
	if whole {
		w.warned = look.warned
		return
	}
	maps.Copy(w.warned, look.warned)
}

// rejectName moves a queue entry whose name is no job id aside, into
// failed/<date>/, under a name no job file can have and no other entry gets
// (a random token): nothing is replaced, and nothing deleted.
func (w *Worker) rejectName(look *queueLook, name string) {
	dir := w.dir(protocol.DirFailed, protocol.DateDir(time.Now()))
	dst := filepath.Join(dir, sanitize(name)+"."+newToken()+".rejected")
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		err = moveNoReplace(w.dir(protocol.DirQueued, name), dst)
	}
	if errors.Is(err, os.ErrNotExist) {
		return // another worker moved it
	}
	if err != nil {
		w.warnOnce(look, "reject:"+name, "queue entry is not a valid job file name, and could not be moved aside",
			"name", escape(name), "error", err)
		return
	}
	for _, d := range []string{dir, w.dir(protocol.DirQueued)} {
		if err := fsutil.SyncDir(d); err != nil {
			w.log.Warn("sync directory", "dir", d, "error", err)
		}
	}
	w.log.Warn("queue entry is not a valid job file name ([A-Za-z0-9_-]+ with .json, .yaml or .yml, at most 200 bytes): moved aside, without a sidecar (no job id to name one)",
		"name", escape(name), "moved_to", dst)
}

// escape writes control characters of a name as Go escapes (a newline as
// \n), so that a log line stays one line.
func escape(name string) string {
	q := strconv.Quote(name)
	return q[1 : len(q)-1]
}

// sanitize keeps a rejected name recognisable in a safe file name.
func sanitize(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b[:min(len(b), 100)])
}

// unsettled reports whether the queued job file name should be left for a
// later look: a regular file that does not parse (or, for YAML, is not a
// valid manifest) and changed less than Settle ago. It notes in look when
// the file settles. Anything else is claimed now, and fails if it must.
func (w *Worker) unsettled(look *queueLook, name, ext string) bool {
	p := w.dir(protocol.DirQueued, name)
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	last := fi.ModTime()
	if c := changed(fi); c.After(last) {
		last = c
	}
	settled := last.Add(w.cfg.Settle)
	if !time.Now().Before(settled) {
		return false
	}
	data, err := readJobFile(p, w.cfg.MaxManifestBytes)
	if err != nil {
		return false // over a limit, or gone: the claim says
	}
	m, err := protocol.ParseManifest(data, ext)
	if err == nil && (ext == ".json" || m.Validate() == nil) {
		return false
	}
	w.log.Debug("job file does not parse yet: looked at again once it has settled", "name", name, "settles_at", settled)
	w.testHook("unsettled", name)
	if look.wake.IsZero() || settled.Before(look.wake) {
		look.wake = settled
	}
	return true
}
