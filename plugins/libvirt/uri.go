package libvirt

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// checkURI refuses a URI this target cannot honour. It speaks libvirt's
// RPC to a daemon on this host through its unix socket, so a URI naming a
// transport (qemu+ssh://, qemu+tcp://, qemu+unix://) or a host would
// otherwise be handed to the local daemon, which would open it itself (an
// ssh from the daemon) or refuse it.
func checkURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return fmt.Errorf("uri %q is not a libvirt URI (driver:///path, such as qemu:///system)", uri)
	}
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	switch {
	case transport == "unix" && u.Host == "":
		return fmt.Errorf("uri %q names a transport, which is not supported: write %s://%s and set socket if the daemon listens elsewhere", uri, driver, u.EscapedPath())
	case transport != "" || u.Host != "":
		return fmt.Errorf("uri %q is remote (%s): remote URIs are not supported; run hyperagent on the KVM host, with a local URI such as %s:///system", uri, remoteWhat(transport, u.Host), driver)
	}
	return nil
}

func remoteWhat(transport, host string) string {
	switch {
	case transport != "" && host != "":
		return fmt.Sprintf("transport %s to host %s", transport, host)
	case host != "":
		return "host " + host
	}
	return "transport " + transport
}

// socketCandidates lists the unix sockets to try for uri, best first: the
// configured one alone, or the monolithic libvirtd's (also served by
// virtproxyd in a modular install), then the modular driver daemon's. A
// path reached twice (/var/run is usually a link to /run) is tried once.
func socketCandidates(uri, configured string) []string {
	if configured != "" {
		return []string{configured}
	}
	u, err := url.Parse(uri)
	if err != nil {
		return []string{"/run/libvirt/libvirt-sock"}
	}
	driver := strings.SplitN(u.Scheme, "+", 2)[0]
	base := []string{"/run/libvirt", "/var/run/libvirt"}
	if u.Path == "/session" {
		if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
			base = []string{filepath.Join(rt, "libvirt")}
		}
	}
	var out []string
	seen := map[string]bool{}
	add := func(dir, name string) {
		real := dir
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			real = r
		}
		if !seen[filepath.Join(real, name)] {
			seen[filepath.Join(real, name)] = true
			out = append(out, filepath.Join(dir, name))
		}
	}
	for _, b := range base {
		add(b, "libvirt-sock")
	}
	if driver != "" && driver != "test" {
		for _, b := range base {
			add(b, "virt"+driver+"d-sock")
		}
	}
	return out
}
