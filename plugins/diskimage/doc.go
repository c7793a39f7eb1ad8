// Package diskimage tells a disk image's format and virtual size from its
// header, never from its name. The files source reads what it is given
// with it, and the libvirt target what an imported domain's disks are.
//
// It imports nothing of this module.
package diskimage
