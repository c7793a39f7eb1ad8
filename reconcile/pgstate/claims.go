package pgstate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/hypersdk/hyperagent/reconcile"
)

// Claims and limit slots are session-level advisory locks with one
// bigint key: a hash of what they lock, within the campaign. Two things
// whose keys collide (a chance of about 1 in 10^11 for a campaign of
// 10,000 migrations) only exclude each other: a migration waits for
// another's claim, never runs twice.
func advisoryKey(kind string, campaign int32, name string) int64 {
	sum := sha256.Sum256([]byte(kind + "\x00" + strconv.Itoa(int(campaign)) + "\x00" + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

func claimKey(campaign int32, addr string) int64 { return advisoryKey("claim", campaign, addr) }

func slotKey(campaign int32, limit string, slot int) int64 {
	return advisoryKey("slot", campaign, limit+"\x00"+strconv.Itoa(slot))
}

// sharedConn is the connection of a shared hold: the lock, claims and
// slots live in its session.
func (b *Backend) sharedConn(ctx context.Context) (*pgx.Conn, error) {
	if !b.locked || !b.shared {
		return nil, errors.New("the state lock is not held shared")
	}
	if b.conn == nil || b.conn.IsClosed() {
		return nil, errSessionLost
	}
	return b.conn, nil
}

// SetLineage gives a campaign never written the lineage (serial 1, no
// records), and returns the campaign's lineage. The campaign's row is
// locked first: a process that comes second waits for the first's
// commit, then reads the lineage it gave.
func (b *Backend) SetLineage(ctx context.Context, lineage string) (string, error) {
	conn, err := b.sharedConn(ctx)
	if err != nil {
		return "", err
	}
	doc, err := emptyDoc(lineage)
	if err != nil {
		return "", err
	}
	var got string
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var serial int64
		if err := tx.QueryRow(ctx, `SELECT lineage, serial FROM hyperagent_campaigns WHERE id = $1 FOR UPDATE`, b.campaign).
			Scan(&got, &serial); err != nil {
			return err
		}
		if serial != 0 {
			return nil
		}
		got = lineage
		_, err := tx.Exec(ctx, `UPDATE hyperagent_campaigns SET lineage = $2, serial = 1, doc = $3::json, updated_at = now() WHERE id = $1`,
			b.campaign, lineage, doc)
		return err
	})
	if err != nil {
		return "", b.lost(fmt.Errorf("giving the campaign its lineage: %w", err))
	}
	return got, nil
}

// lost turns an error on a connection that closed into errSessionLost.
func (b *Backend) lost(err error) error {
	if b.conn == nil || b.conn.IsClosed() {
		return errSessionLost
	}
	return err
}

// Claim takes the migration's advisory lock on this session, without
// waiting, and records who holds it; another session's claim is a
// *reconcile.ClaimedError naming its holder.
func (b *Backend) Claim(ctx context.Context, addr string, holder reconcile.LockInfo) error {
	conn, err := b.sharedConn(ctx)
	if err != nil {
		return err
	}
	if b.claims[addr] {
		// Advisory locks nest: taking it twice would need two releases.
		return fmt.Errorf("%s is claimed by this process already", addr)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, claimKey(b.campaign, addr)).Scan(&ok); err != nil {
		return b.lost(fmt.Errorf("claiming %s: %w", addr, err))
	}
	if !ok {
		ce := &reconcile.ClaimedError{Address: addr}
		err := conn.QueryRow(ctx, `SELECT id, operation, pid, host, since FROM hyperagent_claims WHERE campaign = $1 AND address = $2`,
			b.campaign, addr).Scan(&ce.Holder.ID, &ce.Holder.Operation, &ce.Holder.PID, &ce.Holder.Host, &ce.Holder.Since)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return b.lost(err)
		}
		return ce
	}
	if b.claims == nil {
		b.claims = map[string]bool{}
	}
	b.claims[addr] = true
	if _, err := conn.Exec(ctx, `INSERT INTO hyperagent_claims (campaign, address, id, operation, pid, host, since, session_pid)
		VALUES ($1, $2, $3, $4, $5, $6, now(), pg_backend_pid())
		ON CONFLICT (campaign, address) DO UPDATE SET id = excluded.id, operation = excluded.operation, pid = excluded.pid,
			host = excluded.host, since = excluded.since, session_pid = excluded.session_pid`,
		b.campaign, addr, holder.ID, holder.Operation, holder.PID, holder.Host); err != nil {
		_ = b.Release(ctx, addr)
		return b.lost(fmt.Errorf("recording the claim of %s: %w", addr, err))
	}
	return nil
}

// Release removes the claim's record and unlocks it. A session that
// ended released it already.
func (b *Backend) Release(ctx context.Context, addr string) error {
	if !b.claims[addr] {
		return nil
	}
	delete(b.claims, addr)
	if b.conn == nil || b.conn.IsClosed() {
		return nil
	}
	_, derr := b.conn.Exec(ctx, `DELETE FROM hyperagent_claims WHERE campaign = $1 AND address = $2 AND session_pid = pg_backend_pid()`,
		b.campaign, addr)
	var released bool
	uerr := b.conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1)`, claimKey(b.campaign, addr)).Scan(&released)
	if uerr == nil && !released {
		uerr = fmt.Errorf("the claim of %s was not held by this session", addr)
	}
	return errors.Join(derr, uerr)
}

// TakeSlot tries the limit's n slots in turn and takes the first free
// one. A slot is an advisory lock of this session: one that ends gives
// its slots back.
func (b *Backend) TakeSlot(ctx context.Context, limit string, n int) (int, bool, error) {
	conn, err := b.sharedConn(ctx)
	if err != nil {
		return 0, false, err
	}
	var keys []int64
	var slots []int
	for i := range n {
		if k := slotKey(b.campaign, limit, i); !b.slots[k] {
			keys, slots = append(keys, k), append(slots, i)
		}
	}
	if len(keys) == 0 {
		return 0, false, nil
	}
	// One round trip: the recursive query tries the keys in order, each
	// step only after the one before failed, and stops at the first lock
	// it gets (a plain WHERE with LIMIT may try, and take, more than one).
	var got int
	if err := conn.QueryRow(ctx, `WITH RECURSIVE try(i, ok) AS (
			SELECT 1, pg_try_advisory_lock(($1::bigint[])[1])
			UNION ALL
			SELECT i + 1, pg_try_advisory_lock(($1::bigint[])[i + 1]) FROM try WHERE NOT ok AND i < cardinality($1::bigint[])
		)
		SELECT coalesce(max(i) FILTER (WHERE ok), 0) FROM try`, keys).Scan(&got); err != nil {
		return 0, false, b.lost(fmt.Errorf("taking a slot of %s: %w", limit, err))
	}
	if got == 0 {
		return 0, false, nil
	}
	if b.slots == nil {
		b.slots = map[int64]bool{}
	}
	b.slots[keys[got-1]] = true
	return slots[got-1], true, nil
}

// GiveSlot unlocks a slot TakeSlot took.
func (b *Backend) GiveSlot(ctx context.Context, limit string, slot int) error {
	k := slotKey(b.campaign, limit, slot)
	if !b.slots[k] {
		return nil
	}
	delete(b.slots, k)
	if b.conn == nil || b.conn.IsClosed() {
		return nil
	}
	var released bool
	if err := b.conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1)`, k).Scan(&released); err != nil {
		return err
	}
	if !released {
		return fmt.Errorf("slot %d of %s was not held by this session", slot, limit)
	}
	return nil
}

// Ping checks the session.
func (b *Backend) Ping(ctx context.Context) error {
	conn, err := b.sharedConn(ctx)
	if err != nil {
		return err
	}
	if err := conn.Ping(ctx); err != nil {
		return b.lost(err)
	}
	return nil
}
