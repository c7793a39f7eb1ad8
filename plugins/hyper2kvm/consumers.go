package hyper2kvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// consumers is what serves the workflow directory now: the workers whose
// heartbeat in .workers/ is fresh, by this converter's clock, and the
// daemon's systemd unit when the block names one. The hyper2kvm daemon
// writes no heartbeat; its unit is the only sign of it.
type consumers struct {
	dir   string // <workflow_dir>/.workers
	now   time.Time
	live  []*protocol.Heartbeat
	stale []*protocol.Heartbeat
	bad   []string // heartbeat files that could not be read, with why

	unit     string // "" when none is configured
	unitLive bool
	unitDesc string // "hyper2kvm@x.service is inactive (dead)"
}

// consumers reads the heartbeats and the unit's state once.
func (c *Converter) consumers(ctx context.Context) *consumers {
	cs := &consumers{dir: c.dir(protocol.DirWorkers), now: c.now(), unit: c.cfg.Unit}
	entries, err := os.ReadDir(cs.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		cs.bad = append(cs.bad, err.Error())
	}
	for _, e := range entries {
		if !protocol.IsHeartbeatFile(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		b, err := fsutil.ReadRegular(filepath.Join(cs.dir, e.Name()), maxSidecar)
		if errors.Is(err, os.ErrNotExist) {
			continue // its worker stopped since the listing
		}
		var h *protocol.Heartbeat
		if err == nil {
			h, err = protocol.ParseHeartbeat(b)
		}
		switch {
		case err != nil:
			cs.bad = append(cs.bad, e.Name()+": "+err.Error())
		case h.Fresh(cs.now):
			cs.live = append(cs.live, h)
		default:
			cs.stale = append(cs.stale, h)
		}
	}
	for _, hs := range [][]*protocol.Heartbeat{cs.live, cs.stale} {
		sort.Slice(hs, func(i, j int) bool {
			if hs[i].Host != hs[j].Host {
				return hs[i].Host < hs[j].Host
			}
			return hs[i].PID < hs[j].PID
		})
	}
	if cs.unit != "" {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := c.units.UnitState(ctx, cs.unit)
		if err != nil {
			cs.unitDesc = fmt.Sprintf("%s: state unknown (%v)", cs.unit, err)
		} else {
			cs.unitLive = st.ActiveState == "active" || st.ActiveState == "reloading"
			cs.unitDesc = fmt.Sprintf("%s is %s (%s)", cs.unit, st.ActiveState, st.SubState)
		}
	}
	return cs
}

func (cs *consumers) anyLive() bool { return len(cs.live) > 0 || cs.unitLive }

// status names what was seen, live consumers first.
func (cs *consumers) status() plugins.ConsumerStatus {
	var parts []string
	for _, h := range cs.live {
		parts = append(parts, fmt.Sprintf("%s, heartbeat %s", workerName(h), ago(h.Age(cs.now))))
	}
	if cs.unit != "" {
		parts = append(parts, cs.unitDesc)
	}
	if len(cs.live) == 0 {
		for _, h := range cs.stale {
			parts = append(parts, fmt.Sprintf("%s: last heartbeat %s, stale (written every %s)", workerName(h), ago(h.Age(cs.now)), h.Interval()))
		}
		none := "no worker heartbeat in " + cs.dir
		if len(cs.stale) > 0 {
			none = "no fresh worker heartbeat in " + cs.dir
		}
		if cs.unit == "" {
			none += " and no unit configured"
		}
		parts = append(parts, none)
	}
	for _, b := range cs.bad {
		parts = append(parts, "unreadable heartbeat "+b)
	}
	return plugins.ConsumerStatus{Live: cs.anyLive(), Detail: strings.Join(parts, "; ")}
}

func workerName(h *protocol.Heartbeat) string {
	return fmt.Sprintf("worker on %s (pid %d)", h.Host, h.PID)
}

// ago renders an age; a negative one means the writer's clock is ahead.
func ago(d time.Duration) string {
	d = d.Round(time.Second)
	if d < 0 {
		return fmt.Sprintf("%s in the future (the clocks differ)", -d)
	}
	return d.String() + " ago"
}

// without returns the live workers for which ok is false.
func (cs *consumers) without(ok func(*protocol.Heartbeat) bool) []*protocol.Heartbeat {
	var out []*protocol.Heartbeat
	for _, h := range cs.live {
		if !ok(h) {
			out = append(out, h)
		}
	}
	return out
}

func names(hs []*protocol.Heartbeat) string {
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = workerName(h)
	}
	return strings.Join(s, ", ")
}
