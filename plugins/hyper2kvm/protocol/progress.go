package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// A progress file says how far hyperagent's worker is with a job it
// claimed: processing/.<name>.progress.json beside the job's lease
// processing/.<name>.lease, where <name> is the manifest's file name in
// processing/. It is hyperagent's extension of the protocol: the hyper2kvm
// daemon writes none, and a reader that finds none knows nothing of the
// job's progress. Both are dot-files, which daemons and watchers ignore.
//
// The worker rewrites it (temp file and rename, never in place) at most
// every ProgressInterval while it converts the job, and removes it when the
// job leaves processing/. It names the claim's lease token: a file that
// does not name the token of the lease in place now is another claim's
// leftover, not this claim's progress.
const (
	// ProgressVersion is the format written; a reader refuses others.
	ProgressVersion = 1
	// ProgressMaxBytes bounds what a reader reads of a progress file (one
	// the worker writes is under 512 bytes).
	ProgressMaxBytes = 4 << 10
	// LeaseMaxBytes bounds what a reader reads of a lease.
	LeaseMaxBytes = 1 << 10
	// ProgressInterval is the least time between two rewrites of a
	// progress file.
	ProgressInterval = 500 * time.Millisecond
	// maxProgressBytes bounds total_bytes: far above any job's inputs
	// (vSphere disks are at most 62 TB), far below an int64's overflow.
	maxProgressBytes = 1 << 60
)

// LeaseName is the file name, in processing/, of the worker's lease of the
// job whose manifest is processing/<name>.
func LeaseName(name string) string { return "." + name + ".lease" }

// ProgressName is the file name, in processing/, of the worker's progress
// file for the job whose manifest is processing/<name>.
func ProgressName(name string) string { return "." + name + ".progress.json" }

// Lease is the content of a worker's lease file: "<owner> <token>\n".
type Lease struct {
	// Owner is the worker, <host>/<pid>/<random hex>.
	Owner string
	// Token is unique to the claim: 16 hex digits.
	Token string
}

// Marshal renders the lease as written.
func (l Lease) Marshal() []byte { return []byte(l.Owner + " " + l.Token + "\n") }

// ParseLease reads a lease file.
func ParseLease(data []byte) (Lease, error) {
	line, ok := bytes.CutSuffix(data, []byte("\n"))
	if !ok {
		return Lease{}, errors.New("lease: not one line")
	}
	i := bytes.LastIndexByte(line, ' ')
	if i < 1 || bytes.IndexByte(line, '\n') >= 0 {
		return Lease{}, errors.New("lease: want \"<owner> <token>\"")
	}
	owner, token := line[:i], line[i+1:]
	if err := checkToken(string(token)); err != nil {
		return Lease{}, fmt.Errorf("lease: %w", err)
	}
	return Lease{Owner: string(owner), Token: string(token)}, nil
}

func checkToken(t string) error {
	if b, err := hex.DecodeString(t); err != nil || len(b) != 8 {
		return fmt.Errorf("token %q is not 16 hex digits", t)
	}
	return nil
}

// Progress is one progress file.
type Progress struct {
	Version int `json:"version"`
	// Job is the manifest's file name in processing/, and Token the
	// claim's lease token.
	Job   string `json:"job"`
	Token string `json:"token"`
	// UpdatedAt is when the worker wrote it (UTC).
	UpdatedAt time.Time `json:"updated_at"`
	// DoneBytes of TotalBytes of the job's inputs (the sum of its disks'
	// bytes) are converted: for the disks done, all of their bytes; for
	// the disk under way, the share of it qemu-img reports done.
	DoneBytes  int64 `json:"done_bytes"`
	TotalBytes int64 `json:"total_bytes"`
	// Disk is the id of the disk under way (or the last one, when done).
	Disk string `json:"disk"`
}

// Validate checks a progress file as written or read: a reader trusts
// nothing of one that does not validate.
func (p *Progress) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if p.Version != ProgressVersion {
		bad("version is %d, this hyperagent reads version %d", p.Version, ProgressVersion)
	}
	if _, _, ok := JobFile(p.Job); !ok {
		bad("job %q is not a job file name", p.Job)
	}
	if err := checkToken(p.Token); err != nil {
		bad("%v", err)
	}
	if p.UpdatedAt.IsZero() {
		bad("updated_at is required")
	}
	if p.TotalBytes <= 0 || p.TotalBytes > maxProgressBytes {
		bad("total_bytes is %d, want 1 to %d", p.TotalBytes, int64(maxProgressBytes))
	}
	if p.DoneBytes < 0 || p.DoneBytes > p.TotalBytes {
		bad("done_bytes is %d, want 0 to total_bytes (%d)", p.DoneBytes, p.TotalBytes)
	}
	if p.Disk != "" && !ValidJobID(p.Disk) { // disk ids have the job ids' alphabet
		bad("disk %q is not a disk id", p.Disk)
	}
	return errors.Join(errs...)
}

// ParseProgress reads and validates a progress file.
func ParseProgress(data []byte) (*Progress, error) {
	var p Progress
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("progress: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("progress: %w", err)
	}
	return &p, nil
}

// Marshal renders the progress file as written.
func (p *Progress) Marshal() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
