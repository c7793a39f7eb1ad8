// Package libvirt is the Target that defines converted VMs as libvirt
// domains: disks moved into storage, domain XML built with libvirtxml,
// defined through a libvirt client (never by shelling out to virsh), and
// drift observed through a digest of the normalised XML.
package libvirt
