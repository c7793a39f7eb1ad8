package vsphere

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
)

func TestLeasePercent(t *testing.T) {
	tests := map[string]struct {
		total, done int64
		want        int32
	}{
		"sizes unknown":          {total: 0, done: 5 << 20, want: 0},
		"half":                   {total: 10 << 30, done: 5 << 30, want: 50},
		"more than the estimate": {total: 1 << 30, done: 3 << 30, want: 100},
	}
	for name, tc := range tests {
		k := &leaseKeeper{total: tc.total}
		k.add(tc.done)
		if got := k.percent(); got != tc.want {
			t.Errorf("%s: percent = %d, want %d", name, got, tc.want)
		}
	}
}

// TestLeaseKeeperSurvivesFailedRenewals: the first two renewals fail (a
// fault rule); the keeper logs them through the given logger and goes on
// renewing, where govmomi's updater would have stopped for good.
func TestLeaseKeeperSurvivesFailedRenewals(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	_, f := admin(t, srv)
	vm, _ := exportable(ctx, t, srv, f, "DC0_H0_VM0", 1024)
	powerOffVM(ctx, t, vm)
	lease, err := vm.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info, err := lease.Wait(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	rule := faultRule("HttpNfcLeaseProgress", nil)
	rule.MaxCount = 2
	srv.Service().AddFaultRule(rule)

	var logs strings.Builder
	var mu sync.Mutex
	log := hclog.New(&hclog.LoggerOptions{Output: lockedWriter{&mu, &logs}, Level: hclog.Warn})
	k := keepLease(ctx, lease, info, 20*time.Millisecond, log)
	id := lease.Reference().Value
	deadline := time.Now().Add(10 * time.Second)
	for srv.Leases.Count(id, vcsimtest.LeaseProgress) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	k.close()
	if n := srv.Leases.Count(id, vcsimtest.LeaseProgress); n < 2 {
		t.Fatalf("%d renewals reached the lease after two failed", n)
	}
	mu.Lock()
	warned := strings.Count(logs.String(), "renew export lease")
	mu.Unlock()
	if warned != 2 {
		t.Errorf("%d warnings about failed renewals, want 2:\n%s", warned, logs.String())
	}
	if err := lease.Complete(ctx); err != nil {
		t.Fatal(err)
	}
}
