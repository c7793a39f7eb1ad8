package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/hypersdk/hyperagent/examples"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
)

// devURI is the libvirt driver dev defines its domains on: libvirt's
// test driver, reached through the running daemon. Its domains live while
// some connection to it is open.
const devURI = "test:///default"

// devLayout is where everything of one dev run lives, under one directory.
type devLayout struct {
	Dir      string // the migration repo
	VarFile  string // non-secret variables for the simulator
	StateDir string
	Data     string // work_dir of the repo
	Exports  string
	Workflow string
	Output   string
	Images   string
	Seeds    string // the raw guest bytes each VM was seeded with
}

func newDevLayout(dir string) devLayout {
	data := filepath.Join(dir, "data")
	return devLayout{
		Dir:      dir,
		VarFile:  filepath.Join(dir, "simulator.vars"),
		StateDir: filepath.Join(dir, schema.DefaultStateDir),
		Data:     data,
		Exports:  filepath.Join(data, "exports"),
		Workflow: filepath.Join(data, "workflow"),
		Output:   filepath.Join(data, "output"),
		Images:   filepath.Join(data, "images"),
		Seeds:    filepath.Join(dir, "seeds"),
	}
}

// prepareDevDir returns the absolute dev directory: dir made if absent
// (it must be empty if it exists, as -rm removes it at the end), or a
// new temporary directory when dir is "".
func prepareDevDir(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "hyperagent-dev-")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	ents, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return abs, os.MkdirAll(abs, 0o755)
	case err != nil:
		return "", err
	case len(ents) > 0:
		return "", fmt.Errorf("%s is not empty: dev writes a new repo there (and -rm removes it); name a new or empty directory", abs)
	}
	return abs, nil
}

// writeDevRepo writes the embedded example repo and a variables file
// saying where the simulator and the work directories are. The password is
// not in it: it is passed through the environment.
func writeDevRepo(l devLayout, simURL, thumbprint, domainPrefix string, web []string) error {
	files, err := fs.Glob(examples.Demo, "demo/*.hcl")
	if err != nil {
		return err
	}
	for _, name := range files {
		b, err := examples.Demo.ReadFile(name)
		if err != nil {
			return err
		}
		if err := reconcile.WriteFileAtomic(filepath.Join(l.Dir, path.Base(name)), b); err != nil {
			return err
		}
	}
	quoted := make([]string, len(web))
	for i, w := range web {
		quoted[i] = strconv.Quote(w)
	}
	vars := fmt.Sprintf(`# Written by hyperagent dev: the simulator it started and where the
# campaign's files go. The password is given as HYPERAGENT_VAR_vcenter_password.
vcenter_url        = %q
vcenter_thumbprint = %q
vcenter_username   = %q
work_dir           = %q
web_vms            = [%s]
domain_prefix      = %q
`, simURL, thumbprint, devUser, l.Data, strings.Join(quoted, ", "), domainPrefix)
	if err := reconcile.WriteFileAtomic(l.VarFile, []byte(vars)); err != nil {
		return err
	}
	for _, d := range []string{l.Exports, l.Workflow, l.Output, l.Images} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

const devSetupHint = "run `sudo .ci/setup` (it installs qemu-utils and libvirt and starts libvirtd)"

// checkDevTools fails early, naming what to install, when a real part the
// dev runs against is missing.
func checkDevTools() error {
	for _, tool := range []string{"qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: install qemu-utils, or %s", tool, devSetupHint)
		}
	}
	return nil
}

// devSockets are where libvirtd listens on Debian (run is /var/run).
var devSockets = []string{"/run/libvirt/libvirt-sock", "/var/run/libvirt/libvirt-sock"}

// holdTestDriver opens a connection to the test driver through libvirtd
// and keeps it open: the driver's domains live as long as one connection
// does, and each hyperagent command opens and closes its own.
func holdTestDriver(ctx context.Context) (*golibvirt.Libvirt, error) {
	var tried []string
	for _, sock := range devSockets {
		l, err := connectTestDriver(ctx, sock)
		if err == nil {
			return l, nil
		}
		tried = append(tried, fmt.Sprintf("%s: %v", sock, err))
	}
	hint := devSetupHint
	if os.Geteuid() != 0 {
		// Without polkit (.ci/setup installs none) libvirtd serves only root
		// on its read-write socket.
		hint += `; libvirtd may refuse a non-root client: run it as root, e.g. sudo "$(command -v go)" run ./cmd/hyperagent dev -once`
	}
	return nil, fmt.Errorf("libvirtd is not reachable (%s); %s", strings.Join(tried, "; "), hint)
}

func connectTestDriver(ctx context.Context, sock string) (*golibvirt.Libvirt, error) {
	c, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	l := golibvirt.NewWithDialer(dialers.NewAlreadyConnected(c))
	// ConnectToURI takes no context: closing the socket ends a daemon that
	// accepted and never answers.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err = l.ConnectToURI(golibvirt.ConnectURI(devURI))
	if !stop() {
		return nil, fmt.Errorf("connect to %s: %w", devURI, ctx.Err())
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connect to %s: %w", devURI, err)
	}
	return l, nil
}
