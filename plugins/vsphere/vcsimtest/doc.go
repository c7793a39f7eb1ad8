// Package vcsimtest runs govmomi's vCenter simulator with the pieces it lacks
// for hyperagent's tests and benchmarks: ExportVm (reusing the simulator's
// ExportSnapshot NFC lease), OvfManager.CreateDescriptor, a record of lease
// Complete/Abort calls, HttpNfcLeaseGetManifest for downloads, seeding known
// bytes into a VM's disk, and a counting login check.
//
// NFC downloads can be served as vcsim does (chunked, Range ignored), as a
// static file server does (Content-Length, ETag, Range answered 206), or
// close-delimited (no framing at all); a fault can cut, stall or cleanly
// shorten the next responses after a given number of bytes, and every
// request is recorded with the bytes it carried (SetNFC, InjectNFC,
// NFCRequests).
//
// It imports the simulator and is for tests, test and bench tools, and the
// CLI's `dev` command (a campaign against a simulator, for trying hyperagent
// out); the production vsphere package must never import it.
package vcsimtest
