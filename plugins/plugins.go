package plugins

import (
	"context"
	"io/fs"
	"syscall"
	"time"

	"github.com/hypersdk/hyperagent/schema"
)

// Source knows VMs and exports them: vSphere, or files already exported.
type Source interface {
	// ObserveVMs looks at every requested VM in one batched pass; the
	// number of round trips must not grow with len(req.VMs).
	ObserveVMs(ctx context.Context, req ObserveVMsRequest) (ObserveVMsResponse, error)
	// Export writes the VM's disks and descriptor into req.Dir. A partial
	// file is never left under its final name.
	Export(ctx context.Context, req ExportRequest) (ExportResponse, error)
}

// ExportPruner is the optional ability to delete what Export wrote. A source
// that does not own its files (the files source) does not implement it.
type ExportPruner interface {
	PruneExport(ctx context.Context, req PruneExportRequest) error
}

// Converter turns exported disks into KVM disks through a job queue.
type Converter interface {
	// Submit queues one job under req.JobID. Submitting the same JobID
	// again must not create a second job: return the existing one.
	Submit(ctx context.Context, req SubmitRequest) (SubmitResponse, error)
	// ObserveJobs reports the state of every requested job in one pass.
	ObserveJobs(ctx context.Context, req ObserveJobsRequest) (ObserveJobsResponse, error)
	// Withdraw takes back a job nobody has claimed yet; a claimed job is
	// reported (Withdrawn false, Detail says why), never killed.
	Withdraw(ctx context.Context, req WithdrawRequest) (WithdrawResponse, error)
}

// Target defines VMs on the KVM side.
type Target interface {
	ObserveDomains(ctx context.Context, req ObserveDomainsRequest) (ObserveDomainsResponse, error)
	// Define moves the converted disks into place and defines the domain.
	// Defining a domain hyperagent already defined for the same address
	// replaces its definition; one it did not define is a terminal error.
	Define(ctx context.Context, req DefineRequest) (DefineResponse, error)
}

// Limits are the concurrency limits a plugin instance declares. Zero means
// no limit of its own (the global parallelism still applies).
type Limits struct {
	// MaxParallel bounds concurrent Export (source), in-flight jobs from
	// Submit until the job finishes (converter), or Define (target).
	MaxParallel int
}

// Limited is the optional ability to declare Limits.
type Limited interface{ Limits() Limits }

// Watcher is the optional ability to say "look again" when something a
// plugin observes may have changed (fsnotify on a workflow directory). It
// runs until ctx ends. Events are hints: callers still re-observe on a timer,
// because some filesystems (NFS) deliver none.
type Watcher interface {
	Watch(ctx context.Context, changed func()) error
}

// Closer is the optional ability to release connections when done.
type Closer interface{ Close() error }

// Progress receives bytes done out of total for one item (a disk, a file).
// Total is -1 when unknown. It may be called from several goroutines.
type Progress func(ProgressEvent)

// ProgressEvent is one progress report.
type ProgressEvent struct {
	Address string // the migration
	Item    string // e.g. the disk file name
	Done    int64
	Total   int64
}

// JobProgressReporter is the optional ability of a converter to say how far
// the jobs it converts are, from the figures their consumer publishes
// (hyperagent's worker publishes them; the hyper2kvm daemon does not).
type JobProgressReporter interface {
	// ReportProgress reads, once, how far each requested job is, and
	// passes one event per job with published figures to req.Progress
	// (Item: ConversionItem of the job id; Done of Total bytes, Total
	// known). A job without figures gets no event: its progress is
	// unknown, never guessed.
	ReportProgress(ctx context.Context, req JobProgressRequest) error
}

// JobProgressRequest asks how far jobs are.
type JobProgressRequest struct {
	Jobs     []JobQuery
	Progress Progress // never nil
}

// ConversionItem is the ProgressEvent.Item of a converter job's progress.
func ConversionItem(jobID string) string { return "conversion " + jobID }

// Severity of a Finding.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Finding is a pre-flight problem shown in the plan. An error finding stops
// that migration's steps from being planned.
type Finding struct {
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
	Detail   string   `json:"detail,omitempty"`
}

// VMQuery asks about one VM.
type VMQuery struct {
	Address   string // migration address, the key of the answer
	Path      string // inventory path (vSphere) or file path (files)
	PowerOff  bool   // the migration will power it off (for findings)
	ExportDir string // where it would be exported (for free-space findings)
}

type ObserveVMsRequest struct{ VMs []VMQuery }

type ObserveVMsResponse struct {
	VMs map[string]VMObservation // keyed by VMQuery.Address
}

// VMObservation is what a source sees of one VM now.
type VMObservation struct {
	Found       bool
	Fingerprint string // changes whenever the VM's disks or config change
	Facts       VMFacts
	Findings    []Finding
}

// VMFacts are the facts about a VM the later steps need.
type VMFacts struct {
	Name       string     `json:"name"`
	UUID       string     `json:"uuid,omitempty"` // vSphere instanceUuid
	GuestID    string     `json:"guest_id,omitempty"`
	OSFamily   string     `json:"os_family"` // linux | windows | unknown
	Firmware   string     `json:"firmware"`  // bios | uefi | unknown (vSphere "efi" is "uefi")
	SecureBoot bool       `json:"secure_boot"`
	CPUs       int        `json:"cpus"`
	MemoryMiB  int64      `json:"memory_mib"`
	PowerState string     `json:"power_state,omitempty"` // poweredOn | poweredOff | suspended
	Disks      []DiskFact `json:"disks"`
	NICs       []NIC      `json:"nics"`
}

// DiskFact describes a source disk.
type DiskFact struct {
	ID            string `json:"id"` // stable per VM, [A-Za-z0-9_-]+
	Label         string `json:"label,omitempty"`
	CapacityBytes int64  `json:"capacity_bytes"`
	BootOrder     int    `json:"boot_order"` // lowest boots
	Backing       string `json:"backing,omitempty"`
}

// NIC is a network interface of the source VM.
type NIC struct {
	ID      string `json:"id"`
	MAC     string `json:"mac"`
	Network string `json:"network"`
}

// ExportRequest asks for one VM to be exported into Dir.
type ExportRequest struct {
	Address string
	// Campaign is the state's lineage. The engine claims Dir for the
	// campaign and address (ClaimDir) before calling Export, so Dir holds
	// the owner file (OwnerFile), which the source leaves alone.
	Campaign string
	VM       string // as in VMQuery.Path
	Dir      string // dedicated to this migration; created by the source if missing
	Settings schema.ExportSettings
	Progress Progress // never nil
}

type ExportResponse struct{ Export ExportResult }

// ExportResult is what an export produced; it is recorded in state and is
// the input of a converter job.
type ExportResult struct {
	Dir         string    `json:"dir"`
	Files       []File    `json:"files"` // everything written, disks included
	Disks       []Disk    `json:"disks"` // in boot order
	Facts       VMFacts   `json:"facts"`
	Fingerprint string    `json:"fingerprint"` // of the VM at export
	ExportedAt  time.Time `json:"exported_at"`
	// PoweredOff says hyperagent powered the VM off for this export.
	PoweredOff bool `json:"powered_off,omitempty"`
}

// File is a file hyperagent wrote or adopted.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// Disk is one exported disk image.
type Disk struct {
	ID        string `json:"id"` // [A-Za-z0-9_-]+, unique in the VM
	Path      string `json:"path"`
	Format    string `json:"format"` // vmdk | qcow2 | raw | vhd | vhdx | vdi
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	BootOrder int    `json:"boot_order"`
	Label     string `json:"label,omitempty"`
	// CapacityBytes is the virtual size as the source reported it.
	CapacityBytes int64 `json:"capacity_bytes,omitempty"`
	// Identity is the file as it was when the source computed SHA256 over
	// the bytes it wrote, or nil: a converter may take SHA256 as the
	// file's while the file's identity is still exactly this one.
	Identity *FileIdentity `json:"identity,omitempty"`
}

// FileIdentity pins one version of one file: the filesystem and inode say
// which file, the size, modification and change times which state of it.
// Any write, truncation, rename, link or attribute change sets the change
// time, which nobody can set back (protocol.FileIdentity is the same on
// the wire).
type FileIdentity struct {
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	CtimeNS int64  `json:"ctime_ns"`
}

// IdentityOf is the identity of the file fi describes (from a stat or,
// better, an fstat of an open file), or nil where the platform gives no
// inode and change time.
func IdentityOf(fi fs.FileInfo) *FileIdentity {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return &FileIdentity{Dev: uint64(st.Dev), Ino: st.Ino, Size: fi.Size(),
		MtimeNS: st.Mtim.Nano(), CtimeNS: st.Ctim.Nano()}
}

type PruneExportRequest struct {
	Address  string
	Campaign string
	Export   ExportResult
}

// SubmitRequest queues one conversion job.
type SubmitRequest struct {
	Address  string
	Campaign string // the state's lineage
	JobID    string // unique per campaign, address and attempt (the engine's)
	Export   ExportResult
	Options  schema.ConvertSettings
}

// Provenance is what the job is made from; Submit records it in the job.
func (r SubmitRequest) Provenance() JobProvenance {
	return JobProvenance{Campaign: r.Campaign, Address: r.Address, Fingerprint: r.Export.Fingerprint,
		ExportDigest: ExportDigest(r.Export)}
}

type SubmitResponse struct {
	JobID string
}

// JobQuery asks about one job.
type JobQuery struct {
	Address     string
	JobID       string
	SubmittedAt time.Time
	// Want is what the job must have been made from. A job found under
	// JobID that records anything else (another campaign sharing the
	// workflow directory, an export since replaced) is JobForeign.
	Want JobProvenance
}

type ObserveJobsRequest struct{ Jobs []JobQuery }

type ObserveJobsResponse struct {
	Jobs map[string]JobObservation // keyed by JobID
}

// JobState is where a job is, as observed.
type JobState string

const (
	JobUnknown    JobState = "unknown"    // not found anywhere
	JobQueued     JobState = "queued"     // waiting to be claimed
	JobProcessing JobState = "processing" // claimed, or done but its result is not readable yet
	JobSucceeded  JobState = "succeeded"
	JobFailed     JobState = "failed"
	JobStalled    JobState = "stalled" // queued or processing past the converter's timeout
	// JobForeign is a job under the requested id that was not made from
	// JobQuery.Want: it is never adopted, withdrawn or waited on.
	JobForeign JobState = "foreign"
	// JobWithdrawn is recorded in state for a job taken back from the
	// queue before anyone claimed it.
	JobWithdrawn JobState = "withdrawn"
)

// JobObservation is what a converter sees of one job now.
type JobObservation struct {
	JobID  string
	State  JobState
	Since  time.Time // when it entered State, as far as can be told
	Detail string    // e.g. the daemon unit's health for a stalled job
	// Claimed says a consumer took the job (it sits in processing/): a
	// stalled claimed job may still be running somewhere, and a second
	// attempt is never queued beside it.
	Claimed bool
	Error   string // for failed jobs
	// Outputs, for succeeded jobs, are sized; SHA256 is set when the
	// converter reports one, and computed by the engine otherwise, in the
	// migration's own await step: hashing a large output never holds back
	// the notice of other jobs.
	Outputs []Output
}

// Output is a converted disk.
type Output struct {
	DiskID    string `json:"disk_id"`
	Path      string `json:"path"`
	Format    string `json:"format"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	BootOrder int    `json:"boot_order"`
}

type WithdrawRequest struct {
	Address string
	JobID   string
	// Want: a queued job is withdrawn only when it records this.
	Want JobProvenance
}

type WithdrawResponse struct {
	Withdrawn bool
	Detail    string
}

// DomainQuery asks about one domain.
type DomainQuery struct {
	Address  string
	Campaign string
	// UUID is the domain's UUID as state recorded it, when it was defined.
	UUID string
	Name string
	// Networks are the source networks of the VM's NICs, for findings
	// about unmapped networks.
	Networks []string
	// Network overrides the target's network map when set (domain block).
	Network string
}

type ObserveDomainsRequest struct{ Domains []DomainQuery }

type ObserveDomainsResponse struct {
	Domains map[string]DomainObservation // keyed by DomainQuery.Address
}

// DomainObservation is what a target sees of one domain now.
type DomainObservation struct {
	Exists bool
	UUID   string
	// Digest is of the domain's normalised definition, computed the same
	// way Define computes DefinedDomain.Digest.
	Digest string
	// Owner is the campaign and migration hyperagent recorded in the
	// domain's metadata; zero for a domain hyperagent did not define.
	Owner Owner
	// Ours says the domain is the querying migration's: Owner matches, or
	// (for a domain defined before owners named a campaign) its address
	// and UUID match what state recorded.
	Ours         bool
	MissingDisks []string // disk files the definition names that are gone
	Findings     []Finding
}

// DefineRequest defines one domain from converted disks. A domain named
// Name that is not the migration's (see DomainObservation.Ours) is never
// touched: Define fails with a terminal error.
type DefineRequest struct {
	Address  string
	Campaign string
	UUID     string // recorded by an earlier define, if any
	Name     string // the engine's DomainName; required
	Outputs  []Output
	Facts    VMFacts
	Domain   schema.DomainSettings
}

type DefineResponse struct{ Domain DefinedDomain }

// DefinedDomain is what Define did; it is recorded in state.
type DefinedDomain struct {
	Name   string `json:"name"`
	UUID   string `json:"uuid"`
	Digest string `json:"digest"`
	Disks  []File `json:"disks"`
}

// JobChecker is the optional ability of a converter to say at plan time,
// before any VM is touched, whether a job could run: whether a live
// consumer serves its queue, can run every stage the settings ask for,
// and can read the inputs and write the outputs where they will be.
type JobChecker interface {
	CheckJobs(ctx context.Context, req CheckJobsRequest) (CheckJobsResponse, error)
}

// JobCheck describes one job that may be submitted.
type JobCheck struct {
	Address   string
	Options   schema.ConvertSettings
	ExportDir string // where the inputs are or will be
}

type CheckJobsRequest struct{ Jobs []JobCheck }

type CheckJobsResponse struct {
	// Consumer says who serves the queue now.
	Consumer ConsumerStatus
	// Findings are by JobCheck.Address: an error finding means the job
	// would fail or never be taken, with the fix in its Detail.
	Findings map[string][]Finding
}

// ConsumerStatus says whether anything takes jobs from a converter's queue.
type ConsumerStatus struct {
	Live bool
	// Detail names what was seen: "worker on host1 (pid 42), heartbeat
	// 3s ago", or "hyper2kvm@x.service is inactive (dead)".
	Detail string
}
