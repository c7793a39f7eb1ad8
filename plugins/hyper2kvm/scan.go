package hyper2kvm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// where a job file sits, which is the job's state (docs/protocol.md, section 1). The
// order is precedence: if a job shows up in several places (a daemon that
// crashed between steps), the furthest along wins.
type where int

const (
	inWithdrawn where = iota
	inQueued
	inProcessing
	inFailed
	inProcessed
)

// jobFile is one job file found in the workflow directory.
type jobFile struct {
	where where
	path  string
	name  string
	id    string // the file's stem; <J> or <J>_<YYYYMMDD_HHMMSS>
	ext   string
	info  os.FileInfo
}

// changed is when the file last moved (a rename sets ctime), else mtime.
func (f *jobFile) changed() time.Time {
	if st, ok := f.info.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	}
	return f.info.ModTime()
}

// scanResult is one pass over the workflow directory, indexed by job id
// (a clash-renamed file is indexed under its own id and the original).
type scanResult struct {
	byID map[string][]*jobFile
}

var clashSuffix = regexp.MustCompile(`_[0-9]{8}_[0-9]{6}$`)

func (s *scanResult) add(f *jobFile) {
	s.byID[f.id] = append(s.byID[f.id], f)
	if loc := clashSuffix.FindStringIndex(f.id); loc != nil && loc[0] > 0 {
		base := f.id[:loc[0]]
		s.byID[base] = append(s.byID[base], f)
	}
}

// find returns the job's furthest-along file, ignoring withdrawn ones.
func (s *scanResult) find(id string) *jobFile {
	var best *jobFile
	for _, f := range s.byID[id] {
		if !protocol.MatchesJob(f.id, id) || f.where == inWithdrawn {
			continue
		}
		if best == nil || f.where > best.where || (f.where == best.where && f.changed().After(best.changed())) {
			best = f
		}
	}
	return best
}

func (s *scanResult) withdrawn(id string) bool {
	for _, f := range s.byID[id] {
		if f.where == inWithdrawn && protocol.MatchesJob(f.id, id) {
			return true
		}
	}
	return false
}

// scan reads the four directories and every date folder once. A directory
// that does not exist yet holds no jobs.
func (c *Converter) scan(ctx context.Context) (*scanResult, error) {
	s := &scanResult{byID: map[string][]*jobFile{}}
	dirs := []struct {
		path  string
		where where
	}{
		{c.dir(protocol.DirQueued), inQueued},
		{c.dir(protocol.DirProcessing), inProcessing},
		{c.dir(protocol.DirWithdrawn), inWithdrawn},
	}
	for _, top := range []struct {
		name  string
		where where
	}{{protocol.DirProcessed, inProcessed}, {protocol.DirFailed, inFailed}} {
		entries, err := os.ReadDir(c.dir(top.name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, e := range entries {
			if e.IsDir() && protocol.IsDateDir(e.Name()) {
				dirs = append(dirs, struct {
					path  string
					where where
				}{c.dir(top.name, e.Name()), top.where})
			}
		}
	}
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		entries, err := os.ReadDir(d.path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			id, ext, ok := protocol.JobFile(e.Name())
			// A job file is a regular file: a symlink is never followed
			// (a worker refuses one and moves it to failed/ as it is).
			if !ok || !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue // moved on since ReadDir: the next pass sees where
			}
			s.add(&jobFile{where: d.where, path: filepath.Join(d.path, e.Name()), name: e.Name(), id: id, ext: ext, info: info})
		}
	}
	return s, nil
}
