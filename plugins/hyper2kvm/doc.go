// Package hyper2kvm is the Converter that hands jobs to the hyper2kvm daemon
// (or hyperagent's own worker) through the watch-directory protocol of
// docs/protocol.md: atomic, idempotent submission of Artifact Manifests, one-pass
// observation of the four directories and every date folder, stalled-job
// detection with the daemon unit's systemd state, withdrawal, an fsnotify
// Watcher, and a plan-time JobChecker that finds who serves the directory
// (fresh worker heartbeats in .workers/, the daemon unit over D-Bus) and
// whether they can run each job's stages and reach its inputs and outputs.
//
// The manifest, report, heartbeat and layout types live in the protocol
// subpackage, which the worker imports too. This package only ever writes
// into to_be_processed/ (submission) and withdrawn/ (a job taken back
// before any daemon claimed it: renamed there rather than deleted, for
// audit; daemons never look there). It never touches a claimed job and
// only reads heartbeats.
package hyper2kvm
