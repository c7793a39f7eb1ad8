package protocol

import (
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Directory names under a workflow directory (docs/protocol.md, section 1).
const (
	DirQueued     = "to_be_processed"
	DirProcessing = "processing"
	DirProcessed  = "processed"
	DirFailed     = "failed"
	DirStats      = ".stats"
	StatsFile     = "stats.json"
	// DirWithdrawn holds manifests hyperagent took back before any daemon
	// claimed them. The daemon never looks there; it is kept for audit.
	DirWithdrawn = "withdrawn"
)

// Sidecar suffixes, appended to the manifest's file name.
const (
	ReportSuffix = ".report.json"
	ErrorSuffix  = ".error.json"
)

// DateLayout names the completion-date folders under processed/ and failed/.
const DateLayout = "2006-01-02"

// ClashLayout is the timestamp a clash-renamed job gets: <J>_<ts>.
const ClashLayout = "20060102_150405"

var (
	jobIDRe   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	clashTail = regexp.MustCompile(`^_[0-9]{8}_[0-9]{6}$`)
)

// ValidJobID reports whether id may name a job file.
func ValidJobID(id string) bool { return jobIDRe.MatchString(id) }

// JobExts are the suffixes a daemon accepts, in the order tried.
var JobExts = []string{".json", ".yaml", ".yml"}

// JobFile splits a directory entry name into the job id and suffix. It
// reports false for dot-files (temp files, heartbeats), sidecars and any
// other suffix: those are never jobs.
func JobFile(name string) (id, ext string, ok bool) {
	if strings.HasPrefix(name, ".") {
		return "", "", false
	}
	ext = filepath.Ext(name)
	switch ext {
	case ".json", ".yaml", ".yml":
	default:
		return "", "", false
	}
	id = strings.TrimSuffix(name, ext)
	if !ValidJobID(id) {
		return "", "", false
	}
	return id, ext, true
}

// MatchesJob reports whether the file id fileID is job id: either exactly,
// or the name a daemon gave it on a clash, <id>_<YYYYMMDD_HHMMSS>.
func MatchesJob(fileID, id string) bool {
	if fileID == id {
		return true
	}
	rest, ok := strings.CutPrefix(fileID, id)
	return ok && clashTail.MatchString(rest)
}

// ClashBase is the job id a file id stands for: fileID without the clash
// tail a daemon added (<J>_<YYYYMMDD_HHMMSS>), else fileID itself. A job
// clashing again is renamed from its base, so that MatchesJob still finds
// it under the id it was submitted as.
func ClashBase(fileID string) string {
	if i := len(fileID) - len("_YYYYMMDD_HHMMSS"); i > 0 && clashTail.MatchString(fileID[i:]) {
		return fileID[:i]
	}
	return fileID
}

// ClashName is the name a claimed job gets when its plain name is taken.
func ClashName(id, ext string, t time.Time) string {
	return id + "_" + t.Format(ClashLayout) + ext
}

// DateDir is the completion-date folder for a job finished at t (local).
func DateDir(t time.Time) string { return t.Local().Format(DateLayout) }

// IsDateDir reports whether name looks like a completion-date folder.
func IsDateDir(name string) bool {
	_, err := time.Parse(DateLayout, name)
	return err == nil
}
