package libvirt

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
)

// Target defines converted VMs as libvirt domains. It is safe for
// concurrent use; its connection is opened on first use.
type Target struct {
	cfg  Config
	log  hclog.Logger
	conn *conn

	mu       sync.Mutex
	virtType string // kvm, qemu or test, read from capabilities once
}

var (
	_ plugins.Target  = (*Target)(nil)
	_ plugins.Limited = (*Target)(nil)
	_ plugins.Closer  = (*Target)(nil)
)

// New checks cfg and returns a Target. It does not contact libvirt. Each
// failure is marked with the attribute that causes it.
func New(cfg Config, log hclog.Logger) (*Target, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	var errs []error
	if cfg.URI == "" {
		errs = append(errs, plugins.AttrError("uri", errors.New("uri must not be empty")))
	} else if err := checkURI(cfg.URI); err != nil {
		errs = append(errs, plugins.AttrError("uri", err))
	}
	switch {
	case cfg.StorageDir == "" && cfg.StoragePool == "":
		errs = append(errs, errors.New("one of storage_dir or storage_pool is required"))
	case cfg.StorageDir != "" && cfg.StoragePool != "":
		errs = append(errs, plugins.AttrError("storage_pool", errors.New("storage_dir and storage_pool are mutually exclusive")))
	case cfg.StorageDir != "" && !filepath.IsAbs(cfg.StorageDir):
		errs = append(errs, plugins.AttrError("storage_dir", fmt.Errorf("storage_dir %q must be an absolute path", cfg.StorageDir)))
	}
	if cfg.MaxParallel < 0 {
		errs = append(errs, plugins.AttrError("max_parallel", errors.New("max_parallel must not be negative")))
	}
	for src, dst := range cfg.NetworkMap {
		if _, err := parseNetwork(dst); err != nil {
			errs = append(errs, plugins.AttrError("network_map", fmt.Errorf("network_map[%q]: %w", src, err)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, plugins.Terminal(err)
	}
	return &Target{
		cfg:  cfg,
		log:  log,
		conn: &conn{uri: cfg.URI, socket: cfg.Socket, log: log, retry: defaultRetry},
	}, nil
}

// Limits implements plugins.Limited.
func (t *Target) Limits() plugins.Limits { return plugins.Limits{MaxParallel: t.cfg.MaxParallel} }

// Close implements plugins.Closer: it disconnects from the daemon.
func (t *Target) Close() error { return t.conn.close() }

// netRef is where a NIC is plugged: a libvirt network or a host bridge.
type netRef struct {
	Network string
	Bridge  string
}

func parseNetwork(s string) (netRef, error) {
	if b, ok := strings.CutPrefix(s, "bridge:"); ok {
		if b == "" {
			return netRef{}, errors.New(`"bridge:" needs a bridge name`)
		}
		return netRef{Bridge: b}, nil
	}
	if s == "" {
		return netRef{}, errors.New("network name must not be empty")
	}
	return netRef{Network: s}, nil
}

// networkFor maps a source network to where its NICs go: the domain
// block's override first, then network_map. ok is false when unmapped.
func (t *Target) networkFor(override, source string) (netRef, bool) {
	if override != "" {
		r, err := parseNetwork(override)
		return r, err == nil
	}
	dst, ok := t.cfg.NetworkMap[source]
	if !ok {
		return netRef{}, false
	}
	r, err := parseNetwork(dst)
	return r, err == nil
}
