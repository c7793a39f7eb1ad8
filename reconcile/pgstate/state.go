package pgstate

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hypersdk/hyperagent/reconcile"
)

const closeTimeout = 5 * time.Second

type recordDigest [sha256.Size]byte

// Load reads the campaign and its records in one snapshot (repeatable
// read), so they are of one serial. A campaign never written is an empty
// state.
func (b *Backend) Load(ctx context.Context) (*reconcile.State, error) {
	conn, err := b.connect(ctx)
	if err != nil {
		return nil, err
	}
	var st *reconcile.State
	records := map[string]recordDigest{}
	serials := map[string]int64{}
	err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var id int32
		var lineage string
		var serial int64
		var doc []byte
		err := tx.QueryRow(ctx, `SELECT id, lineage, serial, doc FROM hyperagent_campaigns WHERE workspace = $1`, b.workspace).
			Scan(&id, &lineage, &serial, &doc)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && serial == 0) {
			st = reconcile.NewState()
			return nil
		}
		if err != nil {
			return err
		}
		b.campaign = id
		if st, err = reconcile.DecodeState(doc); err != nil {
			return fmt.Errorf("%s: %w", b.where, err)
		}
		st.Lineage, st.Serial = lineage, uint64(serial)
		rows, err := tx.Query(ctx, `SELECT address, serial, record FROM hyperagent_migrations WHERE campaign = $1`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var addr string
			var serial int64
			var rec []byte
			if err := rows.Scan(&addr, &serial, &rec); err != nil {
				return err
			}
			serials[addr] = serial
			ms := &reconcile.MigrationState{}
			if err := json.Unmarshal(rec, ms); err != nil {
				return fmt.Errorf("%s: the record of %s does not decode: %w", b.where, addr, err)
			}
			st.Migrations[addr] = ms
			records[addr] = sha256.Sum256(rec)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	b.records, b.recordsAt, b.serials = records, reconcile.VersionOf(st), serials
	return st, nil
}

// Write stores st in one transaction, refused unless the stored state is
// base. Only the records that changed since recordsAt are sent when that
// is base; otherwise all of them.
func (b *Backend) Write(ctx context.Context, st *reconcile.State, base reconcile.Version) error {
	conn, err := b.connect(ctx)
	if err != nil {
		return err
	}
	id, err := b.campaignID(ctx, conn, true)
	if err != nil {
		return err
	}
	doc, err := json.Marshal(&reconcile.State{FormatVersion: st.FormatVersion, Lineage: st.Lineage, Serial: st.Serial,
		SuspendedAll: st.SuspendedAll})
	if err != nil {
		return fmt.Errorf("encoding state: %w", err)
	}
	known := b.records
	if b.recordsAt != base {
		known = nil
	}
	records := make(map[string]recordDigest, len(st.Migrations))
	var addrs, recs, slots, gone []string
	for addr, ms := range st.Migrations {
		rec, err := json.Marshal(ms)
		if err != nil {
			return fmt.Errorf("encoding the record of %s: %w", addr, err)
		}
		d := sha256.Sum256(rec)
		records[addr] = d
		if old, ok := known[addr]; !ok || old != d {
			addrs, recs, slots = append(addrs, addr), append(recs, string(rec)), append(slots, ms.JobSlot())
		}
	}
	for addr := range known {
		if _, ok := st.Migrations[addr]; !ok {
			gone = append(gone, addr)
		}
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var stored reconcile.Version
		var serial int64
		if err := tx.QueryRow(ctx, `SELECT lineage, serial FROM hyperagent_campaigns WHERE id = $1 FOR UPDATE`, id).
			Scan(&stored.Lineage, &serial); err != nil {
			return err
		}
		stored.Serial = uint64(serial)
		if !stored.Follows(base) {
			return &reconcile.ConflictError{Where: b.where, Stored: stored, Base: base}
		}
		if len(addrs) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO hyperagent_migrations (campaign, address, serial, record, job_slot)
				SELECT $1, a, $2, r::json, nullif(j, '') FROM unnest($3::text[], $4::text[], $5::text[]) AS u (a, r, j)
				ON CONFLICT (campaign, address) DO UPDATE SET serial = excluded.serial, record = excluded.record, job_slot = excluded.job_slot`,
				id, int64(st.Serial), addrs, recs, slots); err != nil {
				return err
			}
		}
		switch {
		case known == nil:
			// Every record was sent: whatever else is stored is gone.
			keep := make([]string, 0, len(st.Migrations))
			for addr := range st.Migrations {
				keep = append(keep, addr)
			}
			_, err = tx.Exec(ctx, `DELETE FROM hyperagent_migrations WHERE campaign = $1 AND NOT (address = ANY ($2::text[]))`, id, keep)
		case len(gone) > 0:
			_, err = tx.Exec(ctx, `DELETE FROM hyperagent_migrations WHERE campaign = $1 AND address = ANY ($2::text[])`, id, gone)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE hyperagent_campaigns SET lineage = $2, serial = $3, doc = $4::json, updated_at = now() WHERE id = $1`,
			id, st.Lineage, int64(st.Serial), string(doc))
		return err
	})
	if err != nil {
		if b.locked && b.conn.IsClosed() {
			return errSessionLost
		}
		return err
	}
	serials := make(map[string]int64, len(st.Migrations))
	for addr := range st.Migrations {
		if s, ok := b.serials[addr]; ok && known != nil {
			serials[addr] = s
		}
	}
	for _, addr := range addrs {
		serials[addr] = int64(st.Serial)
	}
	b.records, b.recordsAt, b.serials = records, reconcile.VersionOf(st), serials
	return nil
}
