// Package protocol is the hyper2kvm watch-directory protocol of docs/protocol.md
// as data: the Artifact Manifest v1.0 and its validation, the full and short
// success reports, the error sidecar, the directory layout and job-file
// naming, the worker heartbeat (.workers/<host>-<pid>.json), the worker's
// lease and progress file of a claimed job (processing/.<name>.lease,
// processing/.<name>.progress.json: hyperagent's extension) and the
// root-containment rule a worker applies to inputs and outputs.
//
// Both sides import it — the submitter/observer (package hyper2kvm) and the
// built-in worker (package worker) — so that what one writes the other
// accepts by construction. It performs no I/O: no directory scanning,
// claiming or writing (files are written with plugins/fsutil), and must not
// import either side.
package protocol
