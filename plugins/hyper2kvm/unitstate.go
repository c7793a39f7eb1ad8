package hyper2kvm

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
)

// UnitStateReader reads a systemd unit's state; the D-Bus implementation
// is replaced by a fake in tests.
type UnitStateReader interface {
	UnitState(ctx context.Context, unit string) (UnitState, error)
}

// UnitState is what a stalled job's Detail reports of the daemon.
type UnitState struct {
	ActiveState, SubState string
	MainPID               uint32
	NRestarts             uint32
}

func (s UnitState) String() string {
	return fmt.Sprintf("ActiveState=%s SubState=%s MainPID=%d NRestarts=%d", s.ActiveState, s.SubState, s.MainPID, s.NRestarts)
}

// unitDetailOnce returns a function giving the daemon unit's state for a
// stalled job's Detail, read at most once per observation pass.
func (c *Converter) unitDetailOnce(ctx context.Context) func() string {
	return sync.OnceValue(func() string {
		if c.cfg.Unit == "" {
			return "unit state unknown: no unit configured"
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := c.units.UnitState(ctx, c.cfg.Unit)
		if err != nil {
			return "unit state unknown: " + err.Error()
		}
		return "unit " + c.cfg.Unit + ": " + st.String()
	})
}

// systemdUnits reads unit state over the system bus (go-systemd's D-Bus
// API), connecting per call: stalls are rare and the bus may come and go.
type systemdUnits struct{}

func (systemdUnits) UnitState(ctx context.Context, unit string) (UnitState, error) {
	if os.Getenv("DBUS_SYSTEM_BUS_ADDRESS") == "" {
		if _, err := os.Stat("/run/dbus/system_bus_socket"); err != nil {
			return UnitState{}, fmt.Errorf("no system bus (%v)", err)
		}
	}
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return UnitState{}, fmt.Errorf("system bus: %w", err)
	}
	defer conn.Close()
	props, err := conn.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return UnitState{}, fmt.Errorf("unit %s: %w", unit, err)
	}
	st := UnitState{}
	st.ActiveState, _ = props["ActiveState"].(string)
	st.SubState, _ = props["SubState"].(string)
	svc, err := conn.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		return st, nil // not a service unit: no MainPID or restarts to tell
	}
	st.MainPID, _ = svc["MainPID"].(uint32)
	st.NRestarts, _ = svc["NRestarts"].(uint32)
	return st, nil
}
