package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ReportVersion is the version of the full report format.
const ReportVersion = "1.0"

// Report is the full success report (docs/protocol.md, section 7), written beside the
// manifest as <job>.json.report.json and to <output.directory>/report.json.
type Report struct {
	Version          string         `json:"version"`
	Timestamp        string         `json:"timestamp"`
	Hyper2KVMVersion string         `json:"hyper2kvm_version"`
	InputManifest    InputManifest  `json:"input_manifest"`
	Pipeline         PipelineResult `json:"pipeline"`
	Artifacts        []Artifact     `json:"artifacts"`
	Warnings         []Note         `json:"warnings"`
	Errors           []Note         `json:"errors"`
	Summary          Summary        `json:"summary"`
}

type InputManifest struct {
	Path            string `json:"path"`
	ManifestVersion string `json:"manifest_version"`
	SourceVMName    string `json:"source_vm_name"`
	JobID           string `json:"job_id,omitempty"`
}

type PipelineResult struct {
	Success         bool                   `json:"success"`
	DurationSeconds float64                `json:"duration_seconds"`
	Stages          map[string]StageResult `json:"stages"`
}

// StageResult is one stage's outcome. A stage that did not run is never
// Success: it carries Skipped and says why in Result.
type StageResult struct {
	Success  bool    `json:"success"`
	Skipped  bool    `json:"skipped,omitempty"`
	Duration float64 `json:"duration"`
	Result   any     `json:"result,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// Artifact is one converted disk. The report carries no checksum; the
// observer computes it when it adopts the file.
type Artifact struct {
	Type          string `json:"type"` // "converted_disk"
	Path          string `json:"path"`
	DiskID        string `json:"disk_id"`
	Format        string `json:"format"`
	SizeBytes     int64  `json:"size_bytes"`
	BootOrderHint int    `json:"boot_order_hint"`
	Compressed    bool   `json:"compressed"`
}

// Note is a warning or an error of a stage.
type Note struct {
	Stage     string `json:"stage"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
}

type Summary struct {
	TotalStages      int `json:"total_stages"`
	SuccessfulStages int `json:"successful_stages"`
	FailedStages     int `json:"failed_stages"`
	SkippedStages    int `json:"skipped_stages"`
	TotalArtifacts   int `json:"total_artifacts"`
}

// Outcome is what an observer learns from a success sidecar, whichever of
// the report formats the daemon wrote.
type Outcome struct {
	// Full is true for the §3 report; false for a legacy short report,
	// whose artifacts must be found under output.directory by disk id.
	Full      bool
	Success   bool
	Artifacts []Artifact // Full only
	Error     string     // when !Success: the first error the report names
}

// ErrNotParseable says a sidecar is not (yet) a complete document: the
// daemon may still be writing it, so the observer waits and reads again.
var ErrNotParseable = errors.New("sidecar not parseable yet")

// ParseReport understands the full report and both legacy short forms:
// {job_id, status: "success", duration_s} and
// {manifest, status: "completed", completed_at}.
func ParseReport(data []byte) (Outcome, error) {
	var probe struct {
		Version  *string         `json:"version"`
		Pipeline json.RawMessage `json:"pipeline"`
		Status   *string         `json:"status"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return Outcome{}, fmt.Errorf("%w: %v", ErrNotParseable, err)
	}
	if probe.Version != nil && probe.Pipeline != nil {
		var r Report
		if err := json.Unmarshal(data, &r); err != nil {
			return Outcome{}, fmt.Errorf("full report: %w", err)
		}
		o := Outcome{Full: true, Success: r.Pipeline.Success, Artifacts: r.Artifacts}
		if !o.Success {
			o.Error = "pipeline reported failure"
			if len(r.Errors) > 0 {
				o.Error = r.Errors[0].Stage + ": " + r.Errors[0].Message
			}
		}
		return o, nil
	}
	if probe.Status == nil {
		return Outcome{}, fmt.Errorf("report has neither version+pipeline nor status")
	}
	switch *probe.Status {
	case "success", "completed":
		return Outcome{Success: true}, nil
	default:
		return Outcome{Error: "report status " + *probe.Status}, nil
	}
}

// ErrorSidecar is <job>.json.error.json.
type ErrorSidecar struct {
	JobID        string `json:"job_id"`
	OriginalName string `json:"original_name"`
	FailedAt     string `json:"failed_at"`
	Error        string `json:"error"`
	Exception    string `json:"exception"`
	Status       string `json:"status"` // "failed"
}

// ParseErrorSidecar decodes an error sidecar; a document that does not
// decode is ErrNotParseable (the daemon writes it non-atomically).
func ParseErrorSidecar(data []byte) (ErrorSidecar, error) {
	var e ErrorSidecar
	if err := json.Unmarshal(data, &e); err != nil {
		return ErrorSidecar{}, fmt.Errorf("%w: %v", ErrNotParseable, err)
	}
	return e, nil
}
