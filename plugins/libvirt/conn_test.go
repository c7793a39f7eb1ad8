package libvirt

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/plugins"
)

// attrOf returns the attribute a ConfigError in err names, or "".
func attrOf(err error) string {
	var ce *plugins.ConfigError
	if errors.As(err, &ce) {
		return ce.Attr
	}
	return ""
}

// TestURIRefusedByDaemon: a URI the daemon answers and refuses is
// reported with what libvirt said, at the uri attribute, as terminal and
// at once: not as a daemon that did not answer.
func TestURIRefusedByDaemon(t *testing.T) {
	for _, uri := range []string{"qemu:///sytem", "nosuchdriver:///x"} {
		t.Run(uri, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.URI = uri
			rl := newRetryLog()
			tg := newProxiedTarget(t, cfg, rl)
			_, err := tg.ObserveDomains(ctxT(t), plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{{Address: addr, Campaign: campaign, Name: "x"}}})
			var lerr golibvirt.Error
			if !errors.As(err, &lerr) || lerr.Message == "" {
				t.Fatalf("err = %v, want libvirt's own answer in it", err)
			}
			msg := err.Error()
			for _, want := range []string{`"` + uri + `"`, lerr.Message} {
				if !strings.Contains(msg, want) {
					t.Errorf("err = %q, want it to contain %q", msg, want)
				}
			}
			for _, bad := range []string{"no daemon answered", ".ci/setup"} {
				if strings.Contains(msg, bad) {
					t.Errorf("err = %q says %q", msg, bad)
				}
			}
			if attrOf(err) != "uri" || !plugins.IsTerminal(err) {
				t.Errorf("err = %v: attribute %q, terminal %v; want uri, terminal", err, attrOf(err), plugins.IsTerminal(err))
			}
			if n := rl.count(); n != 0 {
				t.Errorf("a refused URI was retried %d times", n)
			}
		})
	}
}

// TestRemoteURIRefused: a URI naming a transport or a host is refused by
// New: it would otherwise go to the local daemon.
func TestRemoteURIRefused(t *testing.T) {
	refused := map[string]string{
		"qemu+ssh://root@kvm1/system": "remote URIs are not supported",
		"qemu+tcp://kvm1/system":      "remote URIs are not supported",
		"qemu+tls://kvm1/system":      "remote URIs are not supported",
		"qemu://kvm1/system":          "remote URIs are not supported",
		"qemu+ssh:///system":          "remote URIs are not supported",
		"qemu+unix:///system":         "write qemu:///system and set socket",
		"system":                      "not a libvirt URI",
	}
	for uri, want := range refused {
		t.Run(uri, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.URI = uri
			_, err := New(cfg, nil)
			if err == nil || !plugins.IsTerminal(err) || attrOf(err) != "uri" || !strings.Contains(err.Error(), want) {
				t.Fatalf("New(uri %q): err = %v, want terminal at uri saying %q", uri, err, want)
			}
			if want == "remote URIs are not supported" && !strings.Contains(err.Error(), "run hyperagent on the KVM host") {
				t.Errorf("err = %v, want it to say where to run hyperagent", err)
			}
		})
	}
	for _, uri := range []string{"qemu:///system", "qemu:///session", "test:///default"} {
		cfg := testConfig(t)
		cfg.URI = uri
		if _, err := New(cfg, nil); err != nil {
			t.Errorf("New(uri %q): %v", uri, err)
		}
	}
}

// TestUnreachableDaemon: no socket answering is retryable, says which
// sockets were tried and what happened there, and names no file of this
// repository; the socket attribute, which chose the socket, is marked.
func TestUnreachableDaemon(t *testing.T) {
	cfg := testConfig(t)
	cfg.Socket = filepath.Join(t.TempDir(), "no-such-sock")
	tg, err := New(cfg, nil) // New must not dial
	if err != nil {
		t.Fatal(err)
	}
	tg.conn.retry = retryPolicy{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, MaxElapsed: 200 * time.Millisecond}
	_, err = tg.ObserveDomains(ctxT(t), plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{{Address: addr, Campaign: campaign, Name: "x"}}})
	if err == nil || plugins.IsTerminal(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "no daemon answered on "+cfg.Socket+" (absent)") || !strings.Contains(msg, "attempts over") {
		t.Errorf("err = %q, want it to name the socket, say it is absent and that it was retried", msg)
	}
	if strings.Contains(msg, ".ci/") {
		t.Errorf("err = %q sends users to a file of this repository", msg)
	}
	if attrOf(err) != "socket" {
		t.Errorf("err = %v marks attribute %q, want socket", err, attrOf(err))
	}
}

func TestSocketCandidates(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	tests := map[string]struct {
		uri, socket string
		want        []string
	}{
		"configured": {"qemu:///system", "/x/sock", []string{"/x/sock"}},
		"test":       {"test:///default", "", []string{"/run/libvirt/libvirt-sock"}},
		"qemu":       {"qemu:///system", "", []string{"/run/libvirt/libvirt-sock", "/run/libvirt/virtqemud-sock"}},
		"session":    {"qemu:///session", "", []string{"/run/user/1000/libvirt/libvirt-sock", "/run/user/1000/libvirt/virtqemud-sock"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := socketCandidates(tc.uri, tc.socket)
			// Where /var/run is not a link to /run, its sockets are tried
			// too, after /run's.
			var kept []string
			for _, s := range got {
				if !strings.HasPrefix(s, "/var/run/") {
					kept = append(kept, s)
				}
			}
			if diff := cmp.Diff(tc.want, kept); diff != "" {
				t.Errorf("candidates %v (-want +got):\n%s", got, diff)
			}
			seen := map[string]bool{}
			for _, s := range got {
				dir, err := filepath.EvalSymlinks(filepath.Dir(s))
				if err != nil {
					continue
				}
				if r := filepath.Join(dir, filepath.Base(s)); seen[r] {
					t.Errorf("candidates %v name %s twice", got, r)
				} else {
					seen[r] = true
				}
			}
		})
	}
}
