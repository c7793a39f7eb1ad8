package agent

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Listener is one place the status API is served. Over TCP with a token
// file every request must carry the token as a bearer token; a TCP
// listener outside loopback cannot be opened without one. A unix socket
// needs none: its mode (0660) and group decide who may connect.
type Listener struct {
	net.Listener
	// token is the SHA-256 of the bearer token; nil requires none.
	token []byte
}

// RequiresToken says whether requests must carry the bearer token.
func (l *Listener) RequiresToken() bool { return l.token != nil }

// Listen opens the status API's listener: "unix:PATH" or
// "tcp:HOST:PORT". tokenFile (agent.status_token_file) holds the bearer
// token TCP requests must carry; it is required when the address bound
// is not a loopback one (an empty host or 0.0.0.0 binds every address).
func Listen(spec, tokenFile string) (*Listener, error) {
	kind, addr, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	if kind == "unix" {
		l, err := listenUnix(addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", spec, err)
		}
		return &Listener{Listener: l}, nil
	}
	var token []byte
	if tokenFile != "" {
		t, err := ReadToken(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", spec, err)
		}
		sum := sha256.Sum256(t)
		token = sum[:]
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	// What was bound decides, not what was written: a name may resolve
	// to anything, and an empty host binds every interface.
	if ta, ok := l.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() && token == nil {
		l.Close()
		return nil, fmt.Errorf("listen %s: %s is not a loopback address, and serving the status API there requires a bearer token: "+
			"set agent { status_token_file } to a file holding one (readable by the agent only), or use a unix socket", spec, ta.IP)
	}
	return &Listener{Listener: l, token: token}, nil
}

// ParseSpec splits "unix:PATH" or "tcp:HOST:PORT".
func ParseSpec(spec string) (kind, addr string, err error) {
	kind, addr, ok := strings.Cut(spec, ":")
	if !ok || addr == "" || (kind != "unix" && kind != "tcp") {
		return "", "", fmt.Errorf("listen %q: want unix:PATH or tcp:HOST:PORT", spec)
	}
	if kind == "tcp" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", "", fmt.Errorf("listen %q: %w", spec, err)
		}
	}
	return kind, addr, nil
}

// ReadToken reads a bearer token file: its content less surrounding
// white space, not empty, and not readable or writable by others. The
// token itself never appears in an error.
func ReadToken(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("token file %s is mode %#o: others may read it; chmod o= it (0600 or 0640)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	t := []byte(strings.TrimSpace(string(b)))
	if len(t) == 0 {
		return nil, fmt.Errorf("token file %s is empty", path)
	}
	if len(t) < 16 {
		return nil, fmt.Errorf("token file %s holds a token of %d bytes: use at least 16 (e.g. openssl rand -hex 32)", path, len(t))
	}
	return t, nil
}

// listenUnix binds a unix socket at path, mode 0660 and group the
// process's: it is bound in a private directory beside path, given its
// mode and group there, and renamed over path, so that it is never
// reachable with the mode the umask gave it. A socket left at path by a
// process that died is replaced; one that a live process serves is not.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, errors.New("another process serves this socket")
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".sock-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bound := filepath.Join(tmp, "s")
	l, err := net.Listen("unix", bound)
	if err != nil {
		return nil, err
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // the socket moves; unixListener removes it
	fail := func(err error) (net.Listener, error) {
		ul.Close()
		return nil, err
	}
	// The directory's setgid bit would give the socket its group.
	if err := os.Lchown(bound, -1, os.Getegid()); err != nil {
		return fail(err)
	}
	if err := os.Chmod(bound, 0o660); err != nil {
		return fail(err)
	}
	if err := os.Rename(bound, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &unixListener{UnixListener: ul, path: path, fi: fi}, nil
}

// unixListener removes its socket when closed, if the path still holds
// the one it bound (a new agent may have replaced it).
type unixListener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
}

// Addr is the socket's path, not where it was bound.
func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	if cur, lerr := os.Lstat(l.path); lerr == nil && os.SameFile(l.fi, cur) {
		_ = os.Remove(l.path)
	}
	return err
}
