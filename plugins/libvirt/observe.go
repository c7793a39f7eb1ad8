package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	golibvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/sync/errgroup"
	"libvirt.org/go/libvirtxml"

	"github.com/hypersdk/hyperagent/plugins"
)

// xmlReadAhead bounds the domain XML reads in flight on one connection. It
// stays under libvirtd's default max_client_requests (5), past which the
// daemon stops reading the client and warns about keep-alive timeouts.
const xmlReadAhead = 4

// ObserveDomains implements plugins.Target in one pass: one call lists
// every domain and one lists the networks, then the XML of only the
// requested domains that exist is read.
func (t *Target) ObserveDomains(ctx context.Context, req plugins.ObserveDomainsRequest) (plugins.ObserveDomainsResponse, error) {
	resp := plugins.ObserveDomainsResponse{Domains: map[string]plugins.DomainObservation{}}
	if len(req.Domains) == 0 {
		return resp, nil
	}
	var xmls map[string]string
	var networks map[string]bool
	err := t.conn.do(ctx, func(l *golibvirt.Libvirt) error {
		// Start afresh: a lost connection runs this again.
		xmls, networks = map[string]string{}, map[string]bool{}
		doms, _, err := l.ConnectListAllDomains(1, 0)
		if err != nil {
			return fmt.Errorf("list domains: %w", err)
		}
		// Without a network driver (some session daemons) networks are
		// simply not checked.
		if nets, _, err := l.ConnectListAllNetworks(1, 0); err != nil {
			t.log.Debug("networks not listed", "error", err)
			networks = nil
		} else {
			for _, n := range nets {
				networks[n.Name] = true
			}
		}
		byName := map[string]golibvirt.Domain{}
		for _, d := range doms {
			byName[d.Name] = d
		}
		// The reads are pipelined on the one connection: libvirt answers
		// them by serial number, so latency, not the count, sets the pace.
		var mu sync.Mutex
		var g errgroup.Group
		g.SetLimit(xmlReadAhead)
		for _, q := range req.Domains {
			d, ok := byName[q.Name]
			if !ok {
				continue
			}
			g.Go(func() error {
				x, err := l.DomainGetXMLDesc(d, golibvirt.DomainXMLInactive)
				if isLibvirtError(err, golibvirt.ErrNoDomain) {
					return nil // undefined since the listing
				}
				if err != nil {
					return fmt.Errorf("read domain %s: %w", q.Name, err)
				}
				mu.Lock()
				xmls[q.Name] = x
				mu.Unlock()
				return nil
			})
		}
		return g.Wait()
	})
	if err != nil {
		return resp, err
	}
	for _, q := range req.Domains {
		o, err := t.observeOne(q, xmls, networks)
		if err != nil {
			return resp, fmt.Errorf("domain %s (of %s): %w", q.Name, q.Address, err)
		}
		resp.Domains[q.Address] = o
	}
	return resp, nil
}

func (t *Target) observeOne(q plugins.DomainQuery, xmls map[string]string, networks map[string]bool) (plugins.DomainObservation, error) {
	var o plugins.DomainObservation
	o.Findings = t.networkFindings(q, networks)
	x, ok := xmls[q.Name]
	if !ok {
		return o, nil
	}
	obs, err := observeXML(x)
	if err != nil {
		return o, err
	}
	o.Exists, o.UUID, o.Digest, o.Owner = true, obs.UUID, obs.Digest, obs.ManagedBy
	o.Ours = plugins.Owner{Campaign: q.Campaign, Address: q.Address}.Adopts(obs.ManagedBy, obs.UUID, q.UUID)
	for _, p := range obs.Disks {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			o.MissingDisks = append(o.MissingDisks, p)
		}
	}
	if !o.Ours {
		o.Findings = append(o.Findings, plugins.Finding{
			Severity: plugins.SeverityError,
			Summary:  fmt.Sprintf("domain %q already exists", q.Name),
			Detail:   foreignDetail(q.Name, obs.ManagedBy),
		})
	}
	return o, nil
}

// networkFindings reports source networks with nowhere to go (an error:
// the domain cannot be defined) and mapped libvirt networks that do not
// exist (a warning: defining works, starting does not).
func (t *Target) networkFindings(q plugins.DomainQuery, networks map[string]bool) []plugins.Finding {
	var out []plugins.Finding
	seen := map[string]bool{}
	for _, src := range q.Networks {
		if seen[src] {
			continue
		}
		seen[src] = true
		ref, ok := t.networkFor(q.Network, src)
		if !ok {
			out = append(out, plugins.Finding{
				Severity: plugins.SeverityError,
				Summary:  fmt.Sprintf("network %q is not mapped", src),
				Detail:   fmt.Sprintf("a NIC of %s is on %q; add it to network_map of target %q, or set domain { network = ... }", q.Address, src, Type),
			})
			continue
		}
		if networks != nil && ref.Network != "" && !networks[ref.Network] && !seen["->"+ref.Network] {
			seen["->"+ref.Network] = true
			out = append(out, plugins.Finding{
				Severity: plugins.SeverityWarning,
				Summary:  fmt.Sprintf("libvirt network %q does not exist", ref.Network),
				Detail:   fmt.Sprintf("%s maps %q to it; the domain can be defined but not started until the network exists", q.Address, src),
			})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Severity < out[j].Severity })
	return out
}

// lookupDomain reads one domain by name; found is false when there is none.
func (t *Target) lookupDomain(ctx context.Context, name string) (observed, bool, error) {
	var x string
	err := t.conn.do(ctx, func(l *golibvirt.Libvirt) error {
		d, err := l.DomainLookupByName(name)
		if err != nil {
			return err
		}
		x, err = l.DomainGetXMLDesc(d, golibvirt.DomainXMLInactive)
		return err
	})
	if isLibvirtError(err, golibvirt.ErrNoDomain) {
		return observed{}, false, nil
	}
	if err != nil {
		return observed{}, false, fmt.Errorf("look up domain %s: %w", name, err)
	}
	o, err := observeXML(x)
	return o, err == nil, err
}

// storageDir is where disks go: storage_dir, or the target path of the
// storage_pool (which must be a directory pool).
func (t *Target) storageDir(ctx context.Context) (string, *golibvirt.StoragePool, error) {
	if t.cfg.StoragePool == "" {
		if err := os.MkdirAll(t.cfg.StorageDir, 0o755); err != nil {
			return "", nil, fmt.Errorf("storage_dir: %w", err)
		}
		return t.cfg.StorageDir, nil, nil
	}
	var pool golibvirt.StoragePool
	var px libvirtxml.StoragePool
	err := t.conn.do(ctx, func(l *golibvirt.Libvirt) error {
		var err error
		pool, err = l.StoragePoolLookupByName(t.cfg.StoragePool)
		if isLibvirtError(err, golibvirt.ErrNoStoragePool) {
			return plugins.Terminal(fmt.Errorf("storage pool %q does not exist", t.cfg.StoragePool))
		}
		if err != nil {
			return fmt.Errorf("storage pool %q: %w", t.cfg.StoragePool, err)
		}
		x, err := l.StoragePoolGetXMLDesc(pool, 0)
		if err != nil {
			return fmt.Errorf("storage pool %q: %w", t.cfg.StoragePool, err)
		}
		px = libvirtxml.StoragePool{} // Unmarshal appends to what a lost attempt left
		return px.Unmarshal(x)
	})
	if err != nil {
		return "", nil, err
	}
	if px.Type != "dir" || px.Target == nil || px.Target.Path == "" {
		return "", nil, plugins.Terminal(fmt.Errorf("storage pool %q is of type %q; only directory pools are supported (or use storage_dir)", t.cfg.StoragePool, px.Type))
	}
	return px.Target.Path, &pool, nil
}
