package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A worker heartbeat says that a worker serves a workflow directory, and
// what it can do. hyperagent's worker rewrites
// <workflow_dir>/.workers/<host>-<pid>.json every interval (atomically:
// temp file and rename) and removes it when it stops gracefully; a worker
// that died leaves a file that simply grows old. Daemons ignore
// dot-directories. hyper2kvm's own daemon writes none.
const (
	DirWorkers = ".workers"
	// HeartbeatVersion is the format written; a reader refuses others.
	HeartbeatVersion = 1
	// HeartbeatMissed is how many intervals may pass without an update
	// before a heartbeat is stale.
	HeartbeatMissed = 3
)

// Capabilities a heartbeat lists: the pipeline stages of the manifest
// (docs/protocol.md, section 5) a worker runs, CapChecksum when it verifies
// disks[].checksum, and one of CapCompressZstd and CapCompressZlib: the
// codec its qcow2 output is compressed with when a job sets
// pipeline.convert.compress (zstd where its qemu-img has it).
const (
	CapInspect      = "inspect"
	CapFix          = "fix"
	CapConvert      = "convert"
	CapValidate     = "validate"
	CapChecksum     = "checksum"
	CapCompressZstd = "compress:zstd"
	CapCompressZlib = "compress:zlib"
)

// Heartbeat is one worker's heartbeat file.
type Heartbeat struct {
	Version   int       `json:"version"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// IntervalSeconds is how often the worker rewrites the file.
	IntervalSeconds float64 `json:"interval_seconds"`
	WorkerVersion   string  `json:"worker_version"`
	// InputRoots and OutputRoots are the directories (symlinks resolved on
	// the worker's host) that manifests' inputs and outputs must be under.
	InputRoots   []string `json:"input_roots"`
	OutputRoots  []string `json:"output_roots"`
	Capabilities []string `json:"capabilities"`
}

// HeartbeatName is the file name of the heartbeat of process pid on host.
// Characters other than letters, digits, '.', '_' and '-' in host become
// '_', so the name is always one plain path element.
func HeartbeatName(host string, pid int) string {
	safe := []byte(host)
	for i, c := range safe {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			safe[i] = '_'
		}
	}
	if len(safe) == 0 || safe[0] == '.' {
		safe = append([]byte("_"), safe...)
	}
	return string(safe) + "-" + strconv.Itoa(pid) + ".json"
}

// IsHeartbeatFile reports whether a directory entry of DirWorkers may be a
// heartbeat; temp files are dot-files.
func IsHeartbeatFile(name string) bool {
	return !strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".json")
}

// Interval is how often the worker rewrites its heartbeat.
func (h *Heartbeat) Interval() time.Duration {
	return time.Duration(h.IntervalSeconds * float64(time.Second))
}

// Age is how long ago, by the reader's clock now, the heartbeat was
// written; negative when the writer's clock is ahead.
func (h *Heartbeat) Age(now time.Time) time.Duration { return now.Sub(h.UpdatedAt) }

// Fresh reports whether the heartbeat was updated within HeartbeatMissed
// of its intervals before now: its worker is alive and serving.
func (h *Heartbeat) Fresh(now time.Time) bool {
	return h.Age(now) <= HeartbeatMissed*h.Interval()
}

// Can reports whether the worker lists capability c.
func (h *Heartbeat) Can(c string) bool {
	for _, have := range h.Capabilities {
		if have == c {
			return true
		}
	}
	return false
}

// Validate checks a heartbeat as written or read.
func (h *Heartbeat) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if h.Version != HeartbeatVersion {
		bad("version is %d, this hyperagent reads version %d", h.Version, HeartbeatVersion)
	}
	if h.Host == "" {
		bad("host is empty")
	}
	if h.PID <= 0 {
		bad("pid is %d", h.PID)
	}
	if h.UpdatedAt.IsZero() || h.StartedAt.IsZero() {
		bad("started_at and updated_at are required")
	}
	if h.IntervalSeconds <= 0 {
		bad("interval_seconds is %v, want > 0", h.IntervalSeconds)
	}
	for _, roots := range []struct {
		name  string
		paths []string
	}{{"input_roots", h.InputRoots}, {"output_roots", h.OutputRoots}} {
		if len(roots.paths) == 0 {
			bad("%s is empty", roots.name)
		}
		for _, p := range roots.paths {
			if !filepath.IsAbs(p) {
				bad("%s: %q is not absolute", roots.name, p)
			}
		}
	}
	return errors.Join(errs...)
}

// ParseHeartbeat reads and validates a heartbeat file.
func ParseHeartbeat(data []byte) (*Heartbeat, error) {
	var h Heartbeat
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	return &h, nil
}

// Marshal renders the heartbeat as written.
func (h *Heartbeat) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Within reports whether path is root or lies under it. Both are compared
// as clean absolute paths; resolving symlinks is the caller's part. The
// worker refuses inputs and outputs that are not within one of its roots,
// and the converter predicts that refusal with the same rule.
func Within(path, root string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && (rel == "." || filepath.IsLocal(rel))
}
