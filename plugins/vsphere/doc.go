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
// while writing, fsync and rename (each disk's file identity taken then,
// beside its sha256, so that a converter can tell the file is unchanged
// without reading it again), an OVF descriptor and a sha256 manifest,
// lease Complete on success and Abort on any failure or cancellation.
//
// A download is never taken for whole because its connection ended. A file
// is whole when its own structure says where it ends (a sparse VMDK: the
// footer and end-of-stream marker of vSphere's streamOptimized stream, or
// the last grain the grain tables of a header-directory image list; see
// vmdk.go), or it met a length vSphere gave (non-disk files) or the server
// announced (Content-Length, Content-Range), or the response's framing
// marked its end (the last chunk of a chunked body, HTTP/2). A body that
// just stopped, with none of these, is refused as unverifiable. A VMDK whose
// capacity is not the matched VM disk's is another disk, and terminal.
// After the downloads, the sizes in the lease's manifest (what vCenter says
// it sent) are compared for files fetched in one request. An export that
// fails any check is discarded: lease aborted, files removed, nothing
// returned. The export directory itself, and what the engine keeps there
// (its owner file), are never removed.
//
// Nothing waits on vCenter without a deadline: each SOAP call has one
// (timing.call, 2 min), tasks, the lease and power states are polled
// rather than long-polled, a download that receives nothing for
// timing.stall (60 s) fails, and after a cancellation the lease abort and
// the power-on get a short deadline of their own (timing.cleanup, 10 s).
//
// Transient failures (a refused or reset connection, a call that got no
// answer, a cut or stalled download, a 5xx) are retried with capped
// exponential backoff; vSphere faults, terminal errors and cancellations
// are not. A download is retried within its lease; a failure elsewhere in
// the export starts it over on a new lease. A session that expired is
// renewed by re-login, transparently.
//
// A retried download resumes: it asks for the rest with a Range request
// (and If-Range with the first response's validator), keeps the prefix
// when the server answers 206 from the right offset, and re-reads that
// prefix from the file so that the sha256 and the structure check cover
// the whole file; a server that answers 200 (vcsim's NFC ignores Range)
// gets the file again from the start. It never resumes across leases: a
// new lease's URLs may serve other bytes (vSphere generates a
// streamOptimized VMDK on the fly, and nothing in the protocol promises
// that two generations are byte-identical), and no validator spans leases
// to prove otherwise. A failed export leaves no partial file behind.
//
// It never imports the engine, and never imports govmomi's simulator (a
// test-only dependency of vcsimtest, its tests and bench/vsphere).
package vsphere
