package protocol

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// A disk's file identity is hyperagent's own addition to the manifest: the
// writer that computed disks[].checksum while writing the file (the vSphere
// export hashes every byte as it streams it) records which file, in which
// state, that checksum is of. hyperagent's worker then skips hashing the
// input again while the file's identity is still exactly that one
// (docs/protocol.md, section 12, "Input verification"). It travels in
// metadata.tags, which daemons pass through untouched, so the manifest stays
// valid for the hyper2kvm daemon, which hashes the input as before.
//
// The tag is IdentityTagPrefix + the disk's id; its value is
// FileIdentity.String.
const IdentityTagPrefix = "file_identity."

// FileIdentity pins one version of one file: the filesystem and inode say
// which file, the size, modification and change times which state of it. No
// write, truncation, rename, link, chmod or time change leaves all five as
// they were: the change time is set by the kernel on each of them, and
// nobody can set it back.
type FileIdentity struct {
	Dev     uint64 // st_dev
	Ino     uint64 // st_ino
	Size    int64  // bytes
	MtimeNS int64  // modification time, nanoseconds since the epoch
	CtimeNS int64  // change time, nanoseconds since the epoch
}

// String is the tag value: "dev=D ino=I size=S mtime_ns=M ctime_ns=C".
func (id FileIdentity) String() string {
	return fmt.Sprintf("dev=%d ino=%d size=%d mtime_ns=%d ctime_ns=%d", id.Dev, id.Ino, id.Size, id.MtimeNS, id.CtimeNS)
}

// ParseFileIdentity reads a tag value written by String, strictly: the five
// fields in that order, decimal, nothing else.
func ParseFileIdentity(s string) (FileIdentity, error) {
	var id FileIdentity
	fields := strings.Split(s, " ")
	keys := []string{"dev", "ino", "size", "mtime_ns", "ctime_ns"}
	if len(fields) != len(keys) {
		return id, fmt.Errorf("file identity %q: want %q", s, "dev=D ino=I size=S mtime_ns=M ctime_ns=C")
	}
	var err error
	for i, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k != keys[i] {
			return id, fmt.Errorf("file identity %q: field %d is not %s=…", s, i+1, keys[i])
		}
		switch k {
		case "dev":
			id.Dev, err = strconv.ParseUint(v, 10, 64)
		case "ino":
			id.Ino, err = strconv.ParseUint(v, 10, 64)
		case "size":
			id.Size, err = strconv.ParseInt(v, 10, 64)
			if err == nil && id.Size < 0 {
				err = fmt.Errorf("negative")
			}
		case "mtime_ns":
			id.MtimeNS, err = strconv.ParseInt(v, 10, 64)
		case "ctime_ns":
			id.CtimeNS, err = strconv.ParseInt(v, 10, 64)
		}
		if err != nil {
			return FileIdentity{}, fmt.Errorf("file identity %q: %s: %w", s, k, err)
		}
	}
	return id, nil
}

// IdentityTag is the metadata.tags key of disk id's file identity.
func IdentityTag(diskID string) string { return IdentityTagPrefix + diskID }

// SetIdentity records disk id's file identity in the manifest's tags.
func (m *Manifest) SetIdentity(diskID string, id FileIdentity) {
	if m.Metadata.Tags == nil {
		m.Metadata.Tags = map[string]string{}
	}
	m.Metadata.Tags[IdentityTag(diskID)] = id.String()
}

// Identity is the file identity recorded for disk d, if any. Validate
// refuses a manifest whose identity tags do not parse.
func (m *Manifest) Identity(d Disk) (FileIdentity, bool, error) {
	v, ok := m.Metadata.Tags[IdentityTag(d.ID)]
	if !ok {
		return FileIdentity{}, false, nil
	}
	id, err := ParseFileIdentity(v)
	if err != nil {
		return FileIdentity{}, false, err
	}
	return id, true, nil
}

// validateIdentities checks every identity tag: it parses, names a disk of
// the manifest, and that disk has a checksum (an identity vouches for a
// checksum; alone it says nothing about the content) and its size.
func (m *Manifest) validateIdentities(bad func(string, ...any)) {
	disks := map[string]Disk{}
	for _, d := range m.Disks {
		disks[d.ID] = d
	}
	keys := make([]string, 0, len(m.Metadata.Tags))
	for k := range m.Metadata.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys) // violations in a stable order
	for _, k := range keys {
		id, ok := strings.CutPrefix(k, IdentityTagPrefix)
		if !ok {
			continue
		}
		fi, err := ParseFileIdentity(m.Metadata.Tags[k])
		d, known := disks[id]
		switch {
		case err != nil:
			bad("metadata.tags[%q]: %v", k, err)
		case !known:
			bad("metadata.tags[%q]: no disk has the id %q", k, id)
		case d.Checksum == "":
			bad("metadata.tags[%q]: disk %s has no checksum for the identity to vouch for", k, id)
		case fi.Size != d.Bytes:
			bad("metadata.tags[%q]: size %d, but the disk's bytes is %d", k, fi.Size, d.Bytes)
		}
	}
}
