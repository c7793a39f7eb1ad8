// Package libvirt is the Target that defines converted VMs as libvirt
// domains: disks moved into storage, domain XML built with libvirtxml,
// defined through a libvirt client (never by shelling out to virsh), and
// drift observed through a digest of the normalised XML.
//
// It speaks to a daemon on this host through its unix socket: a URI
// naming a transport or a host is refused. Calls are retried, with capped
// exponential backoff, while the daemon does not answer or drops the
// connection (a restart); an answer from the daemon is never retried. It
// never overwrites what it did not make: a domain of the same name that
// another migration or campaign owns, or a file at a disk's destination
// that does not hold the converted disk's bytes.
package libvirt
