package libvirt

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/hypersdk/hyperagent/plugins"
)

// TestRetriesWhileDaemonRestarts: a daemon that refuses connections, then
// drops one at once, then cuts two mid-call (at the first call, and
// halfway through), is waited out; the observation is the one a healthy
// daemon gives, with nothing left over from the attempts cut short.
func TestRetriesWhileDaemonRestarts(t *testing.T) {
	cfg := testConfig(t)
	direct := newTestTarget(t, cfg) // holds test:///default open
	ctx := ctxT(t)
	name := uniqueName("restart")
	t.Cleanup(func() { undefine(t, direct, name) })
	disk := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
	def, err := direct.Define(ctx, plugins.DefineRequest{Address: addr, Campaign: campaign, Name: name, Facts: baseFacts(name), Outputs: []plugins.Output{disk}})
	if err != nil {
		t.Fatal(err)
	}

	p := newFlakyProxy(t)
	rl := newRetryLog()
	pcfg := cfg
	pcfg.Socket = p.path
	tg := newProxiedTarget(t, pcfg, rl)
	stop := make(chan struct{})
	defer close(stop)
	notices := make(chan []string, 1)
	go func() {
		// Down until the target has been refused twice.
		var seen []string
		for range 2 {
			s, ok := rl.next(stop)
			if !ok {
				notices <- seen
				return
			}
			seen = append(seen, s)
		}
		p.start(cut{atAccept: true}, cut{beforeCall: procConnectListAllDomains}, cut{beforeCall: procConnectListAllNetworks})
		notices <- seen
	}()
	// The network it maps to does not exist: a warning, which only a
	// listing of the networks gives.
	q := plugins.DomainQuery{Address: addr, Campaign: campaign, Name: name, Networks: []string{"VM Network"}, Network: "nosuchnet"}
	r, err := tg.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{q}})
	if err != nil {
		t.Fatalf("observe through a restarting daemon: %v", err)
	}
	o := r.Domains[addr]
	if !o.Exists || !o.Ours || o.UUID != def.Domain.UUID || o.Digest != def.Domain.Digest {
		t.Errorf("observation = %+v, want the domain as defined (%+v)", o, def.Domain)
	}
	if len(o.Findings) != 1 || o.Findings[0].Severity != plugins.SeverityWarning {
		t.Errorf("findings = %+v, want one warning: network nosuchnet does not exist", o.Findings)
	}
	refusals := <-notices
	for _, s := range refusals {
		if !strings.Contains(s, "connection refused") {
			t.Errorf("retry notice while the daemon was down = %q, want it to say connection refused", s)
		}
	}
	accepted, lists := p.counts(procConnectListAllDomains)
	if accepted != 4 || lists != 2 {
		t.Errorf("proxy accepted %d connections and forwarded %d domain listings; want 4 (dropped, cut twice, served) and 2", accepted, lists)
	}
	if n := rl.count(); n != 5 {
		t.Errorf("%d retries, want 5: refused twice, dropped, cut mid-call twice", n)
	}
}

// TestDefineRetriedAfterLostAnswer: the daemon defines the domain and the
// connection breaks before its answer arrives. Define sends the same
// definition again (same UUID), which libvirt applies as an update: one
// domain, ours, as the response says.
func TestDefineRetriedAfterLostAnswer(t *testing.T) {
	cfg := testConfig(t)
	direct := newTestTarget(t, cfg) // keeps test:///default across the cut
	ctx := ctxT(t)
	p := newFlakyProxy(t)
	p.start(cut{afterCall: procDomainDefineXMLFlags})
	pcfg := cfg
	pcfg.Socket = p.path
	rl := newRetryLog()
	tg := newProxiedTarget(t, pcfg, rl)
	name := uniqueName("lost")
	t.Cleanup(func() { undefine(t, direct, name) })
	disk := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)

	resp, err := tg.Define(ctx, plugins.DefineRequest{Address: addr, Campaign: campaign, Name: name, Facts: baseFacts(name), Outputs: []plugins.Output{disk}})
	if err != nil {
		t.Fatalf("Define with its answer lost once: %v", err)
	}
	if _, defines := p.counts(procDomainDefineXMLFlags); defines != 2 {
		t.Errorf("the definition reached the daemon %d times, want 2 (answer lost, then retried)", defines)
	}
	d := domainXML(t, direct, name)
	if d.UUID != resp.Domain.UUID || managedBy(d) != us {
		t.Errorf("domain UUID %s owner %+v; Define answered UUID %s", d.UUID, managedBy(d), resp.Domain.UUID)
	}
	r, err := direct.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{{Address: addr, Campaign: campaign, Name: name}}})
	if err != nil {
		t.Fatal(err)
	}
	if o := r.Domains[addr]; !o.Ours || o.Digest != resp.Domain.Digest {
		t.Errorf("observed %+v, Define answered digest %s", o, resp.Domain.Digest)
	}
}

// TestTerminalErrorsNotRetried: libvirt refusing a definition (here the
// qemu driver: a machine type it does not have) is terminal and sent once;
// so is XML it cannot parse.
func TestTerminalErrorsNotRetried(t *testing.T) {
	cfg := testConfig(t)
	cfg.URI = "qemu:///system"
	cfg.Machine = "no-such-machine"
	p := newFlakyProxy(t)
	p.start()
	cfg.Socket = p.path
	rl := newRetryLog()
	tg := newProxiedTarget(t, cfg, rl)
	ctx := ctxT(t)
	name := uniqueName("hyperagent-test-refused")
	t.Cleanup(func() { undefine(t, tg, name) })
	disk := makeDisk(t, t.TempDir(), "disk-0", "qcow2", 0)
	_, err := tg.Define(ctx, plugins.DefineRequest{Address: addr, Campaign: campaign, Name: name, Facts: baseFacts(name), Outputs: []plugins.Output{disk}})
	var lerr golibvirt.Error
	if err == nil || !plugins.IsTerminal(err) || !errors.As(err, &lerr) || !strings.Contains(err.Error(), name) {
		t.Errorf("Define with an unknown machine type: err = %v, want libvirt's refusal, terminal, naming the domain", err)
	}
	if _, defines := p.counts(procDomainDefineXMLFlags); defines != 1 {
		t.Errorf("the refused definition was sent %d times, want 1", defines)
	}

	runs := 0
	err = tg.conn.do(ctx, func(l *golibvirt.Libvirt) error {
		runs++
		_, err := l.DomainDefineXMLFlags("<domain", golibvirt.DomainDefineValidate)
		return err
	})
	if !plugins.IsTerminal(err) || runs != 1 {
		t.Errorf("malformed XML: err = %v after %d runs, want terminal after 1", err, runs)
	}
	if n := rl.count(); n != 0 {
		t.Errorf("%d retries, want none", n)
	}
}

// TestCancelStopsRetrying: cancelling the context while waiting for a
// daemon that refuses connections ends the wait at once (the next attempt
// would be an hour away), with the reason it was waiting.
func TestCancelStopsRetrying(t *testing.T) {
	p := newFlakyProxy(t) // never comes up
	cfg := testConfig(t)
	cfg.Socket = p.path
	rl := newRetryLog()
	tg := newProxiedTarget(t, cfg, rl)
	tg.conn.retry = retryPolicy{Initial: time.Hour, Max: time.Hour, MaxElapsed: 3 * time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		if _, ok := rl.next(stop); ok {
			cancel()
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := tg.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{{Address: addr, Campaign: campaign, Name: "x"}}})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("err = %v, want context.Canceled saying the daemon refused connections", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still retrying 30s after the context was cancelled")
	}
}
