package hyper2kvm

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/plugins"
)

// busConfig is a private bus anyone on this host may use, so the test runs
// as root or not.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// privateSystemBus starts a real dbus-daemon on a socket in a temp dir and
// points DBUS_SYSTEM_BUS_ADDRESS at it. It fails, never skips, without
// dbus-daemon.
func privateSystemBus(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Fatalf("dbus-daemon not found in PATH: install Debian's dbus package (.ci/setup must): %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(busConfig, filepath.Join(dir, "bus.sock"))), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+cfg, "--nofork", "--nopidfile", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n') // printed once it listens
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v\n%s", err, stderr.String())
	}
	addr = strings.TrimSpace(addr)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	return addr
}

// fakeSystemd owns org.freedesktop.systemd1 on the bus and serves the
// properties of the given units (interface name → property → value) at the
// object paths systemd uses.
func fakeSystemd(t *testing.T, addr string, units map[string]map[string]map[string]any) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connect to the private bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	for unit, ifaces := range units {
		m := prop.Map{}
		for iface, props := range ifaces {
			m[iface] = map[string]*prop.Prop{}
			for k, v := range props {
				m[iface][k] = &prop.Prop{Value: v, Emit: prop.EmitFalse}
			}
		}
		path := dbus.ObjectPath("/org/freedesktop/systemd1/unit/" + sddbus.PathBusEscape(unit))
		if _, err := prop.Export(conn, path, m); err != nil {
			t.Fatal(err)
		}
	}
	reply, err := conn.RequestName("org.freedesktop.systemd1", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.freedesktop.systemd1: %v (reply %d)", err, reply)
	}
}

// TestSystemdUnitsOverDBus runs go-systemd's client against a real
// dbus-daemon, with systemd's unit objects served by the test.
func TestSystemdUnitsOverDBus(t *testing.T) {
	addr := privateSystemBus(t)
	fakeSystemd(t, addr, map[string]map[string]map[string]any{
		"hyper2kvm@vsphere.service": {
			"org.freedesktop.systemd1.Unit":    {"ActiveState": "activating", "SubState": "auto-restart", "LoadState": "loaded"},
			"org.freedesktop.systemd1.Service": {"MainPID": uint32(0), "NRestarts": uint32(7)},
		},
		"hyper2kvm.service": {
			"org.freedesktop.systemd1.Unit":    {"ActiveState": "active", "SubState": "running"},
			"org.freedesktop.systemd1.Service": {"MainPID": uint32(4242), "NRestarts": uint32(0)},
		},
		"hyper2kvm.path": { // not a service: no MainPID or restarts
			"org.freedesktop.systemd1.Unit": {"ActiveState": "active", "SubState": "waiting"},
		},
	})
	tests := []struct {
		unit    string
		want    UnitState
		wantErr string
	}{
		{unit: "hyper2kvm@vsphere.service", want: UnitState{ActiveState: "activating", SubState: "auto-restart", NRestarts: 7}},
		{unit: "hyper2kvm.service", want: UnitState{ActiveState: "active", SubState: "running", MainPID: 4242}},
		{unit: "hyper2kvm.path", want: UnitState{ActiveState: "active", SubState: "waiting"}},
		{unit: "absent.service", wantErr: "unit absent.service: "},
	}
	for _, tt := range tests {
		t.Run(tt.unit, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := systemdUnits{}.UnitState(ctx, tt.unit)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnitState = %+v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("UnitState (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStalledUnitStateOverDBus: a stalled job's detail carries the daemon
// unit's state read by the converter's default reader over a real bus.
func TestStalledUnitStateOverDBus(t *testing.T) {
	addr := privateSystemBus(t)
	fakeSystemd(t, addr, map[string]map[string]map[string]any{
		"hyper2kvm.service": {
			"org.freedesktop.systemd1.Unit":    {"ActiveState": "active", "SubState": "running"},
			"org.freedesktop.systemd1.Service": {"MainPID": uint32(991), "NRestarts": uint32(2)},
		},
	})
	f := newFixture(t)
	f.c.cfg.Unit = "hyper2kvm.service"
	f.submitted(t, "queued")
	f.now = f.now.Add(61 * time.Minute)
	obs := f.observe(t, "queued")["queued"]
	want := "unit hyper2kvm.service: ActiveState=active SubState=running MainPID=991 NRestarts=2"
	if obs.State != plugins.JobStalled || !strings.HasSuffix(obs.Detail, want) {
		t.Errorf("observed %s %q, want stalled ending %q", obs.State, obs.Detail, want)
	}
}
