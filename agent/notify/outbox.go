package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// outbox is one webhook's directory of events not yet acknowledged: one
// file per event, named by its id, written atomically (so a file is
// whole or absent) and deleted once the receiver answered 2xx.
type outbox struct {
	dir string
}

func (o outbox) path(id string) string { return filepath.Join(o.dir, id+".json") }

// put writes ev unless its file is there already (the same transition
// queued again after a crash): it reports whether it wrote.
func (o outbox) put(ev *Event) (bool, error) {
	p := o.path(ev.ID)
	if _, err := os.Lstat(p); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return false, fmt.Errorf("notifications outbox: %w", err)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return false, fmt.Errorf("encoding event %s: %w", ev.ID, err)
	}
	if err := fsutil.WriteFileAtomic(p, b, 0o600); err != nil {
		return false, fmt.Errorf("notifications outbox: %w", err)
	}
	return true, nil
}

// remove deletes a delivered event. A crash before the directory's fsync
// may bring it back: it is then delivered again, under the same id.
func (o outbox) remove(id string) error {
	if err := os.Remove(o.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("notifications outbox: %w", err)
	}
	return fsutil.SyncDir(o.dir)
}

// list reads the events waiting, oldest queued first. A file that does
// not decode is reported and left where it is.
func (o outbox) list() ([]*Event, []error) {
	ents, err := os.ReadDir(o.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("notifications outbox: %w", err)}
	}
	var out []*Event
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := fsutil.ReadRegular(filepath.Join(o.dir, name), maxEventFile)
		var ev Event
		if err == nil {
			err = json.Unmarshal(b, &ev)
		}
		if major, _, _ := strings.Cut(ev.FormatVersion, "."); err == nil && major != "1" {
			err = fmt.Errorf("format_version %q is not supported by this build (want 1.x)", ev.FormatVersion)
		}
		if err == nil && ev.ID+".json" != name {
			err = fmt.Errorf("holds event %q", ev.ID)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("notifications outbox %s: %w; left in place", filepath.Join(o.dir, name), err))
			continue
		}
		out = append(out, &ev)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].QueuedAt.Equal(out[j].QueuedAt) {
			return out[i].QueuedAt.Before(out[j].QueuedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, errs
}

// maxEventFile bounds what is read of an outbox file.
const maxEventFile = 1 << 20
