// Package hyper2kvm is the Converter that hands jobs to the hyper2kvm daemon
// (or hyperagent's own worker) through the watch-directory protocol of
// PROTOCOL.md: atomic submission of Artifact Manifests, one-pass observation
// of the four directories, stalled-job detection, withdrawal.
package hyper2kvm
