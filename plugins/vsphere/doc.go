// Package vsphere is the Source for VMware vSphere, through govmomi.
//
// It owns: the session (lazy login, thumbprint/CA/insecure trust with errors
// that name the server's SHA-1, keep-alive, re-login when the server drops
// the session, govc's GOVC_* environment as fallback); observation of any
// number of VMs in a constant number of round trips (a container view and
// two property-collector reads; inventory paths resolved from the names
// and parents read, never one finder call per VM); facts, a fingerprint and
// pre-flight findings per VM; and export: power-off (guest shutdown, then a
// hard power-off after a timeout), ExportVm, an NFC lease renewed every 2 s
// while the device URLs stream to .part files with sha256 computed
// while writing, fsync and rename, an OVF descriptor and a sha256 manifest,
// lease Complete on success and Abort on any failure or cancellation.
//
// A failed or cancelled export deletes every file it wrote: there is no
// HTTP Range resume, because a device URL belongs to one lease and a new
// lease may serve different bytes (streamOptimized VMDKs are generated on
// the fly).
//
// It never imports the engine, and never imports govmomi's simulator (a
// test-only dependency of vcsimtest, its tests and bench/vsphere).
package vsphere
