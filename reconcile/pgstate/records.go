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

// WriteRecord writes one record as one transaction, in one round trip to
// the server (a batch, which runs as one implicit transaction). It locks
// the campaign's row, so that writes of every process are ordered and the
// serial moves by one for each; reads the lineage, the record's stored
// serial and, for a JobLimit, how many other records hold a slot of the
// record's converter; then, in one statement whose conditions are those
// same checks, moves the campaign's serial and writes the record with it
// and its job slot, or deletes it. A check that fails writes nothing, and
// the values read say which.
func (b *Backend) WriteRecord(ctx context.Context, w reconcile.RecordWrite) (uint64, error) {
	conn, err := b.sharedConn(ctx)
	if err != nil {
		return 0, err
	}
	var rec []byte
	var recArg any // NULL for a delete
	slot := w.Record.JobSlot()
	if w.Record != nil {
		if rec, err = json.Marshal(w.Record); err != nil {
			return 0, fmt.Errorf("encoding the record of %s: %w", w.Address, err)
		}
		recArg = string(rec)
	}
	doc, err := emptyDoc(w.Lineage)
	if err != nil {
		return 0, err
	}
	known, seen := b.serials[w.Address]
	limited := w.JobLimit > 0 && slot != ""
	batch := &pgx.Batch{}
	batch.Queue(`SELECT lineage, serial FROM hyperagent_campaigns WHERE id = $1 FOR UPDATE`, b.campaign)
	batch.Queue(`SELECT serial FROM hyperagent_migrations WHERE campaign = $1 AND address = $2`, b.campaign, w.Address)
	if limited {
		batch.Queue(`SELECT count(*) FROM hyperagent_migrations WHERE campaign = $1 AND job_slot = $2 AND address <> $3`,
			b.campaign, slot, w.Address)
	}
	change := `INSERT INTO hyperagent_migrations (campaign, address, serial, record, job_slot)
			SELECT $1, $2, c.serial, $4::json, nullif($5::text, '') FROM c
			ON CONFLICT (campaign, address) DO UPDATE SET serial = excluded.serial, record = excluded.record, job_slot = excluded.job_slot`
	if w.Record == nil {
		change = `DELETE FROM hyperagent_migrations m USING c WHERE m.campaign = $1 AND m.address = $2 AND $4::json IS NULL`
	}
	batch.Queue(`WITH c AS (
			UPDATE hyperagent_campaigns SET serial = serial + 1, updated_at = now(),
				lineage = CASE WHEN serial = 0 THEN $3::text ELSE lineage END,
				doc = CASE WHEN serial = 0 THEN $6::json ELSE doc END
			WHERE id = $1 AND (lineage = '' OR lineage = $3::text)
				AND CASE WHEN $7::bool
					THEN EXISTS (SELECT 1 FROM hyperagent_migrations WHERE campaign = $1 AND address = $2 AND serial = $8::bigint)
					ELSE NOT EXISTS (SELECT 1 FROM hyperagent_migrations WHERE campaign = $1 AND address = $2) END
				AND ($9::int = 0 OR coalesce($5::text, '') = ''
					OR (SELECT count(*) FROM hyperagent_migrations WHERE campaign = $1 AND job_slot = $5::text AND address <> $2) < $9::int)
			RETURNING serial
		), w AS (`+change+`)
		SELECT serial FROM c`,
		b.campaign, w.Address, w.Lineage, recArg, slot, doc, seen, known, w.JobLimit)
	var (
		lineage         string
		serial, stored  int64
		exists, written bool
		inFlight        int
		next            int64
	)
	read := func() error {
		br := conn.SendBatch(ctx, batch)
		defer br.Close()
		if err := br.QueryRow().Scan(&lineage, &serial); err != nil {
			return err
		}
		err := br.QueryRow().Scan(&stored)
		if exists = err == nil; err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if limited {
			if err := br.QueryRow().Scan(&inFlight); err != nil {
				return err
			}
		}
		err = br.QueryRow().Scan(&next)
		if written = err == nil; err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return br.Close()
	}
	if err := read(); err != nil {
		return 0, b.lost(err)
	}
	if !written {
		switch {
		case lineage != "" && lineage != w.Lineage:
			return 0, &reconcile.ConflictError{Where: b.where, Stored: reconcile.Version{Lineage: lineage, Serial: uint64(serial)},
				Base: reconcile.Version{Lineage: w.Lineage, Serial: uint64(serial)}}
		case exists != seen || (exists && stored != known):
			return 0, &reconcile.ConflictError{Where: b.where, Address: w.Address,
				Stored: reconcile.Version{Lineage: lineage, Serial: uint64(stored)}, Base: reconcile.Version{Lineage: w.Lineage, Serial: uint64(known)}}
		case limited && inFlight >= w.JobLimit:
			return 0, reconcile.ErrJobLimit
		}
		return 0, fmt.Errorf("%s: the record of %s was not written, and every check passed", b.where, w.Address)
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
