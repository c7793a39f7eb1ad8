// Package vcsimtest runs govmomi's vCenter simulator with the pieces it lacks
// for hyperagent's tests and benchmarks: ExportVm (reusing the simulator's
// ExportSnapshot NFC lease), OvfManager.CreateDescriptor, a record of lease
// Complete/Abort calls, seeding known bytes into a VM's disk, and a counting
// login check.
//
// It imports the simulator and is for tests, test tools and bench tools only;
// the production vsphere package must never import it.
package vcsimtest
