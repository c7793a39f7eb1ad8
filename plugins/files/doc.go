// Package files is the Source for VMs that were exported already: an OVF
// directory, an OVA, or bare VMDK/VHD/raw images. It reads the OVF for the
// VM's facts, unpacks OVAs safely, and hands the converter the same export
// result a vSphere export would. Its Watch says when the directory may have
// changed (fsnotify on every subdirectory, and periodic rescans for what
// events miss). It never deletes the user's files.
package files
