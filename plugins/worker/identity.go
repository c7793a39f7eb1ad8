package worker

import (
	"fmt"
	"os"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// Hash once. A disk's checksum comes from whoever wrote the file: the
// vSphere export hashes every byte as it streams it to disk. Reading the
// whole file again to recompute that sha256 costs the worker a second full
// read and a core for as long as qemu-img converts. So the writer records,
// beside the sha256, the identity of the file it wrote (device, inode,
// size, modification and change time, protocol.FileIdentity, taken with
// fstat after its last write, fsync and rename), and the worker takes the
// checksum as the file's own, without reading it, only when all of this
// holds (trustIdentity):
//
//   - The file's identity now is exactly the recorded one. Device and inode
//     pin the file: another file renamed or copied into its place, or the
//     same bytes restored from a backup, has another inode. Size and mtime
//     catch an ordinary rewrite. The change time catches the rest: the
//     kernel sets it on every write, truncation, rename, link, chmod, chown
//     and time change, and nobody can set it: a writer who rewrites the file
//     in place and restores its mtime (touch -d, utimensat) sets the change
//     time by doing so. Only a change within the same timestamp tick as the
//     writer's own last operation keeps it (a few milliseconds); that is a
//     change made while the export was still writing the file, which its
//     streamed hash never saw either.
//   - Nobody but the file's owner (and root) may write it: no write
//     permission for group or others (a POSIX ACL granting write shows in
//     the group bits, its mask). The writers the identity then has to be
//     trusted against are the exporter's own user and root, who could
//     equally rewrite the manifest and its checksum.
//   - The file lies on a local filesystem. On NFS, SMB, FUSE, 9p or Ceph
//     the attributes come from a server (or a user-space process) and may be
//     served from a cache; the device number is this host's mount, not the
//     file's home.
//
// Whatever does not hold, the input is hashed in full, as a file whose
// manifest carries no identity always is (one that arrived from elsewhere,
// with the protocol's checksum only). A file whose identity changed is
// worth a warning in the report: something touched an export.
//
// The identity is checked again once the output is converted and checked,
// before it is renamed into place, hashed or not: a file that changed while
// qemu-img read it fails the job.

// trustIdentity says why the recorded identity cannot stand in for reading
// the file at path, whose stat is fi, or "" when it can.
func trustIdentity(path string, fi os.FileInfo, want protocol.FileIdentity) string {
	got := plugins.IdentityOf(fi)
	if got == nil {
		return "this platform gives no file identity"
	}
	if why := identityDiff(protocol.FileIdentity(*got), want); why != "" {
		return "the file changed since its checksum was computed (" + why + ")"
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Sprintf("the file is writable by others than its owner (mode %v)", perm)
	}
	switch t, remote, err := fsutil.RemoteFS(path); {
	case err != nil:
		return fmt.Sprintf("its filesystem cannot be examined: %v", err)
	case remote:
		return fmt.Sprintf("it is on a network or user-space filesystem (type %#x)", t)
	}
	return ""
}

// identityDiff names the first field in which two identities differ, or "".
func identityDiff(got, want protocol.FileIdentity) string {
	switch {
	case got.Dev != want.Dev || got.Ino != want.Ino:
		return fmt.Sprintf("device/inode %d/%d, recorded %d/%d", got.Dev, got.Ino, want.Dev, want.Ino)
	case got.Size != want.Size:
		return fmt.Sprintf("size %d, recorded %d", got.Size, want.Size)
	case got.MtimeNS != want.MtimeNS:
		return fmt.Sprintf("mtime %d ns, recorded %d ns", got.MtimeNS, want.MtimeNS)
	case got.CtimeNS != want.CtimeNS:
		return fmt.Sprintf("ctime %d ns, recorded %d ns", got.CtimeNS, want.CtimeNS)
	}
	return ""
}

// statIdentity is the identity of the file at path now.
func statIdentity(path string) (protocol.FileIdentity, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return protocol.FileIdentity{}, err
	}
	id := plugins.IdentityOf(fi)
	if id == nil {
		return protocol.FileIdentity{}, fmt.Errorf("%s: this platform gives no file identity", path)
	}
	return protocol.FileIdentity(*id), nil
}
