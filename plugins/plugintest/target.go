package plugintest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
)

var (
	_ plugins.Target  = (*Target)(nil)
	_ plugins.Limited = (*Target)(nil)
)

// Target is a fake target: domains by name, each with the address that
// defined it and a digest of its definition. The disks are the converted
// outputs, left where they are (ObserveDomains reports those that vanish).
type Target struct {
	Name        string
	MaxParallel int
	Delay       time.Duration
	Dir         string

	mu       sync.Mutex
	domains  map[string]*fakeDomain
	fail     map[string]error
	defines  map[string]int
	observes int
	defining gauge
	log      *journal
}

type fakeDomain struct {
	plugins.DefinedDomain
	ManagedBy plugins.Owner `json:"managed_by"`
	Deleted   bool          `json:"deleted,omitempty"`
}

// NewTarget returns a fake target; dir "" keeps everything in memory.
func NewTarget(name, dir string) (*Target, error) {
	t := &Target{Name: name, Dir: dir, domains: map[string]*fakeDomain{}, fail: map[string]error{}, defines: map[string]int{}}
	var err error
	if t.log, err = newJournal(dir, name+"-domains.log"); err != nil {
		return nil, err
	}
	err = t.log.replay(func(line []byte) error {
		var d fakeDomain
		if err := json.Unmarshal(line, &d); err != nil {
			return err
		}
		if d.Deleted {
			delete(t.domains, d.Name)
		} else {
			t.domains[d.Name] = &d
			t.defines[d.ManagedBy.Address]++
		}
		return nil
	})
	return t, err
}

func (t *Target) Limits() plugins.Limits { return plugins.Limits{MaxParallel: t.MaxParallel} }

// FailDefine makes Define of addr fail with err (nil clears it).
func (t *Target) FailDefine(addr string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		delete(t.fail, addr)
	} else {
		t.fail[addr] = err
	}
}

// AddForeignDomain puts a domain hyperagent did not define.
func (t *Target) AddForeignDomain(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.domains[name] = &fakeDomain{DefinedDomain: plugins.DefinedDomain{Name: name, UUID: "foreign-" + name, Digest: "foreign"}}
}

// Undefine removes a domain, as an operator might.
func (t *Target) Undefine(name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.domains[name]
	if !ok {
		return fmt.Errorf("no domain %q", name)
	}
	delete(t.domains, name)
	gone := *d
	gone.Deleted = true
	return t.log.append(gone)
}

// Tamper changes a domain's definition behind hyperagent's back.
func (t *Target) Tamper(name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.domains[name]
	if !ok {
		return fmt.Errorf("no domain %q", name)
	}
	d.Digest = "tampered-" + d.Digest
	return t.log.append(d)
}

func (t *Target) ObserveDomains(ctx context.Context, req plugins.ObserveDomainsRequest) (plugins.ObserveDomainsResponse, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.observes++
	out := plugins.ObserveDomainsResponse{Domains: make(map[string]plugins.DomainObservation, len(req.Domains))}
	for _, q := range req.Domains {
		d, ok := t.domains[q.Name]
		if !ok {
			out.Domains[q.Address] = plugins.DomainObservation{}
			continue
		}
		o := plugins.DomainObservation{Exists: true, UUID: d.UUID, Digest: d.Digest, Owner: d.ManagedBy}
		o.Ours = plugins.Owner{Campaign: q.Campaign, Address: q.Address}.Adopts(d.ManagedBy, d.UUID, q.UUID)
		for _, f := range d.Disks {
			if !fileIntact(f.Path, f.Size) {
				o.MissingDisks = append(o.MissingDisks, f.Path)
			}
		}
		if !o.Ours {
			o.Findings = append(o.Findings, plugins.Finding{Severity: plugins.SeverityError,
				Summary: fmt.Sprintf("domain %q exists and was not defined by hyperagent for %s", q.Name, q.Address)})
		}
		out.Domains[q.Address] = o
	}
	return out, nil
}

func (t *Target) Define(ctx context.Context, req plugins.DefineRequest) (plugins.DefineResponse, error) {
	t.mu.Lock()
	t.defining.inc()
	ferr := t.fail[req.Address]
	t.mu.Unlock()
	defer func() { t.mu.Lock(); t.defining.dec(); t.mu.Unlock() }()
	if err := work(ctx, t.Delay, nil); err != nil {
		return plugins.DefineResponse{}, err
	}
	if ferr != nil {
		return plugins.DefineResponse{}, ferr
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	owner := plugins.Owner{Campaign: req.Campaign, Address: req.Address}
	if d, ok := t.domains[req.Name]; ok && !owner.Adopts(d.ManagedBy, d.UUID, req.UUID) {
		return plugins.DefineResponse{}, plugins.Terminal(fmt.Errorf("domain %q exists and was not defined by hyperagent for %s", req.Name, req.Address))
	}
	b, _ := json.Marshal(struct {
		Name    string
		Outputs []plugins.Output
		Facts   plugins.VMFacts
		Domain  any
	}{req.Name, req.Outputs, req.Facts, req.Domain})
	sum := sha256.Sum256(b)
	d := &fakeDomain{ManagedBy: owner, DefinedDomain: plugins.DefinedDomain{
		Name: req.Name, UUID: "uuid-" + hex.EncodeToString(sum[:4]), Digest: hex.EncodeToString(sum[:])}}
	for _, o := range req.Outputs {
		d.Disks = append(d.Disks, plugins.File{Path: o.Path, Size: o.Size, SHA256: o.SHA256})
	}
	if err := t.log.append(d); err != nil {
		return plugins.DefineResponse{}, err
	}
	t.domains[req.Name] = d
	t.defines[req.Address]++
	return plugins.DefineResponse{Domain: d.DefinedDomain}, nil
}

// Defines counts Define calls that succeeded for addr.
func (t *Target) Defines(addr string) int { t.mu.Lock(); defer t.mu.Unlock(); return t.defines[addr] }

// Domain returns a defined domain.
func (t *Target) Domain(name string) (plugins.DefinedDomain, plugins.Owner, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.domains[name]
	if !ok {
		return plugins.DefinedDomain{}, plugins.Owner{}, false
	}
	return d.DefinedDomain, d.ManagedBy, true
}

func (t *Target) ObserveCalls() int { t.mu.Lock(); defer t.mu.Unlock(); return t.observes }
func (t *Target) HighWater() int    { t.mu.Lock(); defer t.mu.Unlock(); return t.defining.high }
