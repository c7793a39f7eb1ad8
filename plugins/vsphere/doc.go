// Package vsphere is the Source for VMware vSphere, through govmomi: batched
// observation of VMs with one property-collector pass, pre-flight findings,
// and export over an NFC lease with sha256 computed while streaming.
//
// It never imports the engine; it implements plugins.Source.
package vsphere
