package agent

import (
	"fmt"
	"html/template"
	"sort"
	"time"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/reconcile"
)

// pageView is what the status page's template renders: the same Status
// and MigrationStatus values the API serves, put in the words and order
// of the page. Every string in it is escaped by html/template; only the
// page's own style and script are trusted.
type pageView struct {
	Refresh int
	// TokenRequired says the listener wants the bearer token; Shown says
	// the request may see the campaign (Status and Rows are set).
	TokenRequired bool
	Shown         bool

	Status  Status
	Planned bool
	Counts  []phaseCount
	Line    string // Status.Line, as systemd shows it
	Rows    []pageRow
	Now     time.Time

	Style  template.CSS
	Script template.JS
}

type phaseCount struct {
	Phase reconcile.Phase
	N     int
}

// pageRow is one migration in the table.
type pageRow struct {
	Wave      int
	Address   string
	Phase     reconcile.Phase
	Step      string // "export running"
	Progress  string // "40% (1.0 GiB of 2.5 GiB)", "3m 2s so far, progress unknown"
	Percent   int    // -1 when there is no byte total to show a bar for
	Rate      string
	ETA       string
	Error     string // "export failed at …: message"
	Note      string // suspended, blocked, the retry
	Converter string
}

// fill sets the view from the agent's status and migrations at now.
func (v *pageView) fill(s Status, ms []MigrationStatus, now time.Time) {
	v.Shown, v.Status, v.Planned, v.Now = true, s, ms != nil, now
	for _, ph := range phaseOrder {
		if n := s.Phases[ph]; n > 0 {
			v.Counts = append(v.Counts, phaseCount{ph, n})
		}
	}
	v.Line = s.Line()
	sorted := append([]MigrationStatus{}, ms...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Wave < sorted[j].Wave })
	for _, m := range sorted {
		v.Rows = append(v.Rows, row(m))
	}
}

func row(m MigrationStatus) pageRow {
	r := pageRow{Wave: m.Wave, Address: m.Address, Phase: m.Phase, Percent: -1, Converter: m.Converter}
	if m.Step != "" {
		r.Step = string(m.Step) + " " + m.StepState
	}
	if p := m.Progress; p != nil {
		elapsed := formatDuration(time.Duration(p.ElapsedSeconds * float64(time.Second)))
		switch b := p.Bytes; {
		case b == nil:
			r.Progress = elapsed + " so far, progress unknown"
		case b.Total < 0:
			r.Progress = fsutil.FormatBytes(b.Done) + " so far (total unknown), " + elapsed
		default:
			r.Percent = percent(b.Done, b.Total)
			r.Progress = fmt.Sprintf("%d%% (%s of %s), %s so far", r.Percent, fsutil.FormatBytes(b.Done), fsutil.FormatBytes(b.Total), elapsed)
		}
		if b := p.Bytes; b != nil {
			if b.RateBytesPerSecond > 0 {
				r.Rate = fsutil.FormatBytes(int64(b.RateBytesPerSecond)) + "/s"
			}
			if b.ETASeconds != nil {
				r.ETA = formatDuration(time.Duration(*b.ETASeconds * float64(time.Second)))
			}
		}
	}
	if e := m.LastError; e != nil {
		r.Error = fmt.Sprintf("%s failed at %s: %s", e.Step, formatClock(e.At), e.Message)
	}
	switch rt := m.Retry; {
	case m.Suspended:
		r.Note = "suspended"
	case m.Blocked:
		r.Note = "blocked"
	case rt != nil && rt.Terminal:
		r.Note = "waits for its configuration or VM to change"
	case rt != nil && rt.Next != nil:
		r.Note = fmt.Sprintf("retry %d at %s", rt.Attempts+1, formatClock(*rt.Next))
	}
	return r
}

func percent(done, total int64) int {
	if total <= 0 {
		return 100
	}
	return int(min(max(done*100/total, 0), 100))
}

// formatDuration is "1h 2m", "3m 12s" or "45s".
func formatDuration(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

// formatClock is a time as the agent's clock reads it, with its zone.
func formatClock(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }
