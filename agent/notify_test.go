package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/hypersdk/hyperagent/agent/notify"
	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// notifySecret is a sensitive variable's value that the fake source
// quotes in an export error; no event may carry it.
const notifySecret = "pw-5e4d3c2b1a09f8e7"

// inbox is a webhook receiver on loopback that keeps every event.
type inbox struct {
	mu  sync.Mutex
	evs []notify.Event
}

func (in *inbox) serve(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), notifySecret) {
			t.Errorf("an event carries the secret: %s", b)
		}
		var ev notify.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("not an event: %s", b)
		}
		in.mu.Lock()
		in.evs = append(in.evs, ev)
		in.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// find returns the events of type typ for addr.
func (in *inbox) find(typ, addr string) []notify.Event {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []notify.Event
	for _, ev := range in.evs {
		if ev.Type == typ && ev.Address == addr {
			out = append(out, ev)
		}
	}
	return out
}

// TestAgentNotifies runs an agent in-process on fakes it can steer and a
// webhook on loopback: the real engine's state writes and plans make
// every kind of event — a migration defined, an export that failed (its
// error redacted), a job the converter failed, a stalled job, a domain
// that vanished (drift) and its redefinition.
func TestAgentNotifies(t *testing.T) {
	src, _ := plugintest.NewSource("src", "")
	conv, _ := plugintest.NewConverter("conv", "")
	tgt, _ := plugintest.NewTarget("kvm", "")
	conv.Rounds = 1
	reg := plugins.NewRegistry()
	for _, f := range plugintest.Factories() {
		switch f.Kind {
		case addrs.KindSource:
			f.New = func(context.Context, plugins.NewRequest) (any, error) { return src, nil }
		case addrs.KindConverter:
			f.New = func(context.Context, plugins.NewRequest) (any, error) { return conv, nil }
		case addrs.KindTarget:
			f.New = func(context.Context, plugins.NewRequest) (any, error) { return tgt, nil }
		}
		reg.Register(f)
	}
	var in inbox
	url := in.serve(t)
	dir := t.TempDir()
	var hclText strings.Builder
	fmt.Fprintf(&hclText, `variable "tok" {
  sensitive = true
  default   = %q
}
source "fake" "src" {
  dir   = "fakes"
  token = var.tok
}
converter "fake" "conv" {
  dir = "fakes"
}
target "fake" "kvm" {
  dir = "fakes"
}
agent {
  auto_apply = true
  interval   = "1h"
  retry_min  = "1h"
  retry_max  = "2h"
}
notify "webhook" "ops" {
  url = %q
}
`, notifySecret, url)
	for _, m := range []string{"ok", "bad", "stuck", "broken"} {
		fmt.Fprintf(&hclText, "migration %q {\n  source = source.fake.src\n  converter = converter.fake.conv\n  target = target.fake.kvm\n  vm = \"/DC1/vm/%s\"\n  export { dir = \"exports\" }\n}\n", m, m)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hclText.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	src.FailExport("migration.bad", errors.New("login refused for "+notifySecret))
	conv.StallJobs("migration.stuck", "hyper2kvm@x.service is inactive")
	conv.FailJobs("migration.broken", "qemu-img: unsupported image format")

	a := New(Options{ConfigDir: dir, Registry: reg, NoEvents: true, PollInterval: time.Millisecond,
		Load: func() (*schema.Config, schema.Files, hcl.Diagnostics) {
			return schema.Load(schema.LoadOptions{Dir: dir, Plugins: reg.Schemas()})
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// pass runs passes until cond holds.
	pass := func(what string, cond func() bool) {
		t.Helper()
		for i := 0; !cond(); i++ {
			if i > 40 {
				t.Fatalf("never: %s (status %+v)", what, a.Status())
			}
			n := a.Status().Passes
			a.Trigger()
			for deadline := time.Now().Add(20 * time.Second); a.Status().Passes <= n; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no pass ran (%s)", what)
				}
			}
			time.Sleep(20 * time.Millisecond) // deliveries run beside the loop
		}
	}
	pass("ok migrated, bad failed, stuck stalled, broken's job failed", func() bool {
		return len(in.find(schema.NotifyMigrated, "migration.ok")) == 1 && len(in.find(schema.NotifyFailed, "migration.bad")) == 1 &&
			len(in.find(schema.NotifyStalled, "migration.stuck")) >= 1 && len(in.find(schema.NotifyFailed, "migration.broken")) >= 1
	})
	if ev := in.find(schema.NotifyFailed, "migration.bad")[0]; ev.Step != reconcile.StepExport || !strings.Contains(ev.Error, reconcile.Redacted) ||
		ev.Phase != reconcile.PhaseFailed {
		t.Errorf("bad's failure: %+v", ev)
	}
	if ev := in.find(schema.NotifyStalled, "migration.stuck")[0]; ev.JobID == "" || ev.Detail != "hyper2kvm@x.service is inactive" {
		t.Errorf("stuck's stall: %+v", ev)
	}
	if ev := in.find(schema.NotifyFailed, "migration.broken")[0]; ev.JobID == "" || ev.Error != "qemu-img: unsupported image format" {
		t.Errorf("broken's job failure: %+v", ev)
	}
	ok := in.find(schema.NotifyMigrated, "migration.ok")[0]
	if ok.Domain != "ok" || ok.Campaign == "" || ok.Step != reconcile.StepDefine {
		t.Errorf("ok's migration: %+v", ok)
	}

	// The domain vanishes: drift, then its redefinition is news again.
	if err := tgt.Undefine("ok"); err != nil {
		t.Fatal(err)
	}
	pass("ok drifted and was migrated again", func() bool {
		return len(in.find(schema.NotifyDrift, "migration.ok")) == 1 && len(in.find(schema.NotifyMigrated, "migration.ok")) == 2
	})
	if ev := in.find(schema.NotifyDrift, "migration.ok")[0]; !strings.Contains(ev.Detail, `domain "ok" no longer exists`) {
		t.Errorf("ok's drift: %+v", ev)
	}
	// Passes that find nothing new send nothing.
	conv.StallJobs("migration.stuck", "")
	conv.FailJobs("migration.broken", "")
	pass("stuck and broken migrated", func() bool {
		return len(in.find(schema.NotifyMigrated, "migration.stuck")) == 1 && len(in.find(schema.NotifyMigrated, "migration.broken")) == 1
	})
	in.mu.Lock()
	before := len(in.evs)
	in.mu.Unlock()
	for range 2 {
		n := a.Status().Passes
		a.Trigger()
		for deadline := time.Now().Add(time.Minute); a.Status().Passes <= n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no pass within a minute of a trigger")
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	in.mu.Lock()
	after := len(in.evs)
	in.mu.Unlock()
	if after != before {
		t.Errorf("%d events from passes that changed nothing", after-before)
	}
}
