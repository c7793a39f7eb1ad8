package worker

import (
	"time"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// report builds the full report of docs/protocol.md, section 7.
type report struct{ protocol.Report }

func newReport(m *protocol.Manifest, path, id string) *report {
	return &report{protocol.Report{
		Version:          protocol.ReportVersion,
		Hyper2KVMVersion: Version,
		InputManifest: protocol.InputManifest{Path: path, ManifestVersion: m.ManifestVersion,
			SourceVMName: m.Source.VMName, JobID: id},
		Pipeline:  protocol.PipelineResult{Stages: map[string]protocol.StageResult{}},
		Artifacts: []protocol.Artifact{},
		Warnings:  []protocol.Note{},
		Errors:    []protocol.Note{},
	}}
}

func (r *report) stage(name string, s protocol.StageResult) { r.Pipeline.Stages[name] = s }

func (r *report) warn(stage, msg string) {
	r.Warnings = append(r.Warnings, protocol.Note{Stage: stage, Message: msg, Timestamp: time.Now().Format(time.RFC3339)})
}

// finish fills the summary; the pipeline succeeded only if every stage
// that was not skipped succeeded.
func (r *report) finish(d time.Duration) {
	r.Timestamp = time.Now().Format(time.RFC3339)
	r.Pipeline.DurationSeconds = d.Seconds()
	s := protocol.Summary{TotalStages: len(r.Pipeline.Stages), TotalArtifacts: len(r.Artifacts)}
	for _, st := range r.Pipeline.Stages {
		switch {
		case st.Skipped:
			s.SkippedStages++
		case st.Success:
			s.SuccessfulStages++
		default:
			s.FailedStages++
		}
	}
	r.Summary = s
	r.Pipeline.Success = s.FailedStages == 0
}
