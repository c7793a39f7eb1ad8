package pgstate

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/hypersdk/hyperagent/reconcile"
)

// emptyDoc is the campaign document of a state with no top-level field
// set but its lineage and format.
func emptyDoc(lineage string) (string, error) {
	doc, err := json.Marshal(&reconcile.State{FormatVersion: reconcile.StateFormatVersion, Lineage: lineage})
	if err != nil {
		return "", fmt.Errorf("encoding state: %w", err)
	}
	return string(doc), nil
}

// LoadRecord reads one record and its serial; moved says the serial is
// not the one this backend last read or wrote.
func (b *Backend) LoadRecord(ctx context.Context, addr string) (*reconcile.MigrationState, bool, error) {
	conn, err := b.sharedConn(ctx)
	if err != nil {
		return nil, false, err
	}
	var serial int64
	var rec []byte
	err = conn.QueryRow(ctx, `SELECT serial, record FROM hyperagent_migrations WHERE campaign = $1 AND address = $2`,
		b.campaign, addr).Scan(&serial, &rec)
	known, seen := b.serials[addr]
	if errors.Is(err, pgx.ErrNoRows) {
		delete(b.serials, addr)
		return nil, seen, nil
	}
	if err != nil {
		return nil, false, b.lost(fmt.Errorf("reading the record of %s: %w", addr, err))
	}
	ms := &reconcile.MigrationState{}
	if err := json.Unmarshal(rec, ms); err != nil {
		return nil, false, fmt.Errorf("%s: the record of %s does not decode: %w", b.where, addr, err)
	}
	b.track(addr, serial, sha256.Sum256(rec))
	return ms, !seen || known != serial, nil
}

// track remembers a record's serial and digest as stored.
func (b *Backend) track(addr string, serial int64, d recordDigest) {
	if b.serials == nil {
		b.serials = map[string]int64{}
	}
	b.serials[addr] = serial
	if b.records != nil {
		b.records[addr] = d
	}
}

// WriteRecord writes one record as one transaction. It locks the
// campaign's row, so that writes of every process are ordered and the
// serial moves by one for each; checks the lineage and that the record
// is stored at the serial this backend last saw (absent, if it saw
// none); counts, for a JobLimit, the other records holding a slot of
// the record's converter; then writes the record with the new serial
// and its job slot, or deletes it.
func (b *Backend) WriteRecord(ctx context.Context, w reconcile.RecordWrite) (uint64, error) {
	conn, err := b.sharedConn(ctx)
	if err != nil {
		return 0, err
	}
	var rec []byte
	slot := w.Record.JobSlot()
	if w.Record != nil {
		if rec, err = json.Marshal(w.Record); err != nil {
			return 0, fmt.Errorf("encoding the record of %s: %w", w.Address, err)
		}
	}
	known, seen := b.serials[w.Address]
	var next int64
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var lineage string
		var serial int64
		if err := tx.QueryRow(ctx, `SELECT lineage, serial FROM hyperagent_campaigns WHERE id = $1 FOR UPDATE`, b.campaign).
			Scan(&lineage, &serial); err != nil {
			return err
		}
		if lineage != "" && lineage != w.Lineage {
			return &reconcile.ConflictError{Where: b.where, Stored: reconcile.Version{Lineage: lineage, Serial: uint64(serial)},
				Base: reconcile.Version{Lineage: w.Lineage, Serial: uint64(serial)}}
		}
		var stored int64
		err := tx.QueryRow(ctx, `SELECT serial FROM hyperagent_migrations WHERE campaign = $1 AND address = $2`, b.campaign, w.Address).
			Scan(&stored)
		exists := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if exists != seen || (exists && stored != known) {
			return &reconcile.ConflictError{Where: b.where, Address: w.Address,
				Stored: reconcile.Version{Lineage: lineage, Serial: uint64(stored)}, Base: reconcile.Version{Lineage: w.Lineage, Serial: uint64(known)}}
		}
		if w.JobLimit > 0 && slot != "" {
			var inFlight int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM hyperagent_migrations WHERE campaign = $1 AND job_slot = $2 AND address <> $3`,
				b.campaign, slot, w.Address).Scan(&inFlight); err != nil {
				return err
			}
			if inFlight >= w.JobLimit {
				return reconcile.ErrJobLimit
			}
		}
		next = serial + 1
		if w.Record == nil {
			_, err = tx.Exec(ctx, `DELETE FROM hyperagent_migrations WHERE campaign = $1 AND address = $2`, b.campaign, w.Address)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO hyperagent_migrations (campaign, address, serial, record, job_slot)
				VALUES ($1, $2, $3, $4::json, nullif($5, ''))
				ON CONFLICT (campaign, address) DO UPDATE SET serial = excluded.serial, record = excluded.record, job_slot = excluded.job_slot`,
				b.campaign, w.Address, next, string(rec), slot)
		}
		if err != nil {
			return err
		}
		if serial == 0 {
			doc, err := emptyDoc(w.Lineage)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE hyperagent_campaigns SET lineage = $2, serial = $3, doc = $4::json, updated_at = now() WHERE id = $1`,
				b.campaign, w.Lineage, next, doc)
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE hyperagent_campaigns SET serial = $2, updated_at = now() WHERE id = $1`, b.campaign, next)
		return err
	})
	if err != nil {
		return 0, b.lost(err)
	}
	// Other records moved the serial too: a whole write must load first.
	b.recordsAt = reconcile.Version{}
	if w.Record == nil {
		delete(b.serials, w.Address)
		delete(b.records, w.Address)
	} else {
		b.track(w.Address, next, sha256.Sum256(rec))
	}
	return uint64(next), nil
}
