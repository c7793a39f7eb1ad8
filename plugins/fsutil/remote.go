package fsutil

import "golang.org/x/sys/unix"

// RemoteFS says whether path is on a network or user-space filesystem
// (NFS, SMB/CIFS, FUSE, 9p, Ceph): one whose files' attributes come from
// a server or another process and may be served from a cache, and whose
// inotify events cover this host's changes only. fsType is its statfs
// magic. The error is statfs's: callers decide what an unexaminable
// filesystem counts as.
func RemoteFS(path string) (fsType int64, remote bool, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, false, err
	}
	fsType = int64(st.Type)
	switch fsType {
	case unix.NFS_SUPER_MAGIC, unix.SMB_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC,
		unix.FUSE_SUPER_MAGIC, unix.V9FS_MAGIC, unix.CEPH_SUPER_MAGIC:
		return fsType, true, nil
	}
	return fsType, false, nil
}
