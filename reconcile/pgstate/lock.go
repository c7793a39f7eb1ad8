package pgstate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hypersdk/hyperagent/reconcile"
)

// Lock takes the campaign's advisory lock on this backend's session,
// without waiting, and records its holder. Another session holding it
// is a *reconcile.LockedError naming that holder.
func (b *Backend) Lock(ctx context.Context, info reconcile.LockInfo) error {
	conn, id, err := b.tryLock(ctx, "pg_try_advisory_lock")
	if err != nil {
		return err
	}
	return b.holdExclusive(ctx, conn, id, info)
}

// holdExclusive records info as the holder of the exclusive lock this
// session just took.
func (b *Backend) holdExclusive(ctx context.Context, conn *pgx.Conn, id int32, info reconcile.LockInfo) error {
	b.locked, b.shared = true, false
	if _, err := conn.Exec(ctx, `INSERT INTO hyperagent_locks (campaign, id, operation, pid, host, since, session_pid)
		VALUES ($1, $2, $3, $4, $5, $6, pg_backend_pid())
		ON CONFLICT (campaign) DO UPDATE SET id = excluded.id, operation = excluded.operation, pid = excluded.pid,
			host = excluded.host, since = excluded.since, session_pid = excluded.session_pid`,
		id, info.ID, info.Operation, info.PID, info.Host, info.Since); err != nil {
		_ = b.Unlock(ctx, info)
		return fmt.Errorf("writing lock info: %w", err)
	}
	return nil
}

// lockNotAvailable is the SQLSTATE of a lock_timeout that expired.
const lockNotAvailable = "55P03"

// LockQueued waits for the campaign's exclusive lock in the server's
// queue, up to timeout (lock_timeout). The server makes a request that
// conflicts with a waiting one wait too, and a try fail: passes asking
// for the lock shared meanwhile are refused, so that passes coming and
// going beside each other cannot keep an exclusive holder out for ever.
// It waits on the backend's one connection.
func (b *Backend) LockQueued(ctx context.Context, info reconcile.LockInfo, timeout time.Duration) error {
	if b.locked && b.conn != nil && !b.conn.IsClosed() {
		return errors.New("the state lock is already held by this process")
	}
	b.locked = false
	conn, err := b.connect(ctx)
	if err != nil {
		return err
	}
	id, err := b.campaignID(ctx, conn, true)
	if err != nil {
		return fmt.Errorf("locking state: %w", err)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", max(timeout.Milliseconds(), 1))); err != nil {
			return err
		}
		// A session-level lock: it outlives the transaction.
		_, err := tx.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, lockClass, id)
		return err
	})
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == lockNotAvailable {
		holder, _, _ := b.liveHolder(ctx, conn, id)
		return &reconcile.LockedError{Dir: b.where, Info: holder, Session: true}
	}
	if err != nil {
		return fmt.Errorf("locking state: %w", err)
	}
	return b.holdExclusive(ctx, conn, id, info)
}

// LockShared takes the campaign's advisory lock shared, for a pass
// that works beside others, and records its holder in
// hyperagent_holders. An exclusive holder is a *reconcile.LockedError
// naming it.
func (b *Backend) LockShared(ctx context.Context, info reconcile.LockInfo) error {
	conn, id, err := b.tryLock(ctx, "pg_try_advisory_lock_shared")
	if err != nil {
		return err
	}
	b.locked, b.shared = true, true
	if _, err := conn.Exec(ctx, `INSERT INTO hyperagent_holders (campaign, id, operation, pid, host, since, session_pid)
		VALUES ($1, $2, $3, $4, $5, $6, pg_backend_pid())`,
		id, info.ID, info.Operation, info.PID, info.Host, info.Since); err != nil {
		_ = b.Unlock(ctx, info)
		return fmt.Errorf("writing lock info: %w", err)
	}
	return nil
}

// liveHolder names a holder of the campaign's lock whose session holds
// it now: the exclusive holder, else the oldest shared one. Records
// left by sessions that ended are not named (ok false when none is
// live: the holder has not written its record yet).
func (b *Backend) liveHolder(ctx context.Context, conn *pgx.Conn, id int32) (reconcile.LockInfo, bool, error) {
	return scanHolder(conn.QueryRow(ctx, `SELECT id, operation, pid, host, since FROM (
			SELECT id, operation, pid, host, since, session_pid, 0 AS shared FROM hyperagent_locks WHERE campaign = $1
			UNION ALL
			SELECT id, operation, pid, host, since, session_pid, 1 FROM hyperagent_holders WHERE campaign = $1) h
		WHERE session_pid IN (`+lockHolderPIDs+`)
		ORDER BY shared, since LIMIT 1`, id, lockClass))
}

func (b *Backend) holderRecord(ctx context.Context, conn *pgx.Conn, id int32) (reconcile.LockInfo, bool, error) {
	return scanHolder(conn.QueryRow(ctx, `SELECT id, operation, pid, host, since FROM hyperagent_locks WHERE campaign = $1`, id))
}

// scanHolder reads a holder record (id, operation, pid, host, since);
// ok is false when the query found none.
func scanHolder(row pgx.Row) (info reconcile.LockInfo, ok bool, err error) {
	err = row.Scan(&info.ID, &info.Operation, &info.PID, &info.Host, &info.Since)
	if errors.Is(err, pgx.ErrNoRows) {
		return reconcile.LockInfo{}, false, nil
	}
	if err != nil {
		return reconcile.LockInfo{}, false, err
	}
	info.Since = info.Since.UTC()
	return info, true, nil
}

// Unlock removes the holder record if it still names info, and releases
// the advisory lock. A session that ended released it already; the
// record it left is replaced by the next holder.
func (b *Backend) Unlock(ctx context.Context, info reconcile.LockInfo) error {
	if !b.locked {
		return nil
	}
	shared := b.shared
	b.locked, b.shared = false, false
	if b.conn == nil || b.conn.IsClosed() {
		return nil
	}
	table, unlock := "hyperagent_locks", "pg_advisory_unlock"
	if shared {
		table, unlock = "hyperagent_holders", "pg_advisory_unlock_shared"
	}
	_, derr := b.conn.Exec(ctx, `DELETE FROM `+table+` WHERE campaign = $1 AND id = $2`, b.campaign, info.ID)
	var released bool
	uerr := b.conn.QueryRow(ctx, `SELECT `+unlock+`($1, $2)`, lockClass, b.campaign).Scan(&released)
	if uerr == nil && !released {
		uerr = errors.New("the advisory lock was not held by this session")
	}
	return errors.Join(derr, uerr)
}

// lockHolderPIDs are the server processes of the sessions holding
// campaign $1's lock (exclusive or shared); $2 is lockClass.
const lockHolderPIDs = `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
	AND classid::int8 = $2 AND objid::int8 = $1 AND objsubid = 2`

// Holder names the live holder of the campaign's lock (the exclusive
// one, else the oldest shared one), or, when none is live, the last
// exclusive holder's record (held false: its session ended).
func (b *Backend) Holder(ctx context.Context) (reconcile.LockInfo, bool, bool, error) {
	conn, err := b.connect(ctx)
	if err != nil {
		return reconcile.LockInfo{}, false, false, err
	}
	id, err := b.campaignID(ctx, conn, false)
	if err != nil || id == 0 {
		return reconcile.LockInfo{}, false, false, err
	}
	if info, ok, err := b.liveHolder(ctx, conn, id); err != nil || ok {
		return info, ok, ok, err
	}
	info, ok, err := b.holderRecord(ctx, conn, id)
	return info, ok, false, err
}

// ForceUnlock ends the session that holds the lock (exclusive or
// shared) whose record names id, waiting up to 5 s for it to go, then
// removes the record. A record whose session is gone is only removed.
// The session's claims and slots end with it.
func (b *Backend) ForceUnlock(ctx context.Context, id string) error {
	info, ok, _, err := b.Holder(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the state in %s is not locked", b.where)
	}
	conn := b.conn
	var pid int32
	var table string
	err = conn.QueryRow(ctx, `SELECT session_pid, t FROM (
			SELECT session_pid, 'hyperagent_locks' AS t FROM hyperagent_locks WHERE campaign = $1 AND id = $2
			UNION ALL
			SELECT session_pid, 'hyperagent_holders' FROM hyperagent_holders WHERE campaign = $1 AND id = $2) h LIMIT 1`,
		b.campaign, id).Scan(&pid, &table)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("lock ID %q does not match the held lock (%s)", id, info)
	}
	if err != nil {
		return err
	}
	var live bool
	if err := conn.QueryRow(ctx, `SELECT $3::int IN (`+lockHolderPIDs+`)`, b.campaign, lockClass, pid).Scan(&live); err != nil {
		return err
	}
	if live {
		var ended bool
		if err := conn.QueryRow(ctx, `SELECT pg_terminate_backend($1, 5000)`, pid).Scan(&ended); err != nil {
			return fmt.Errorf("force-unlock: ending the holder's database session: %w", err)
		}
		if !ended {
			return fmt.Errorf("force-unlock: the holder's database session (server pid %d) did not end within 5s", pid)
		}
	}
	if _, err := conn.Exec(ctx, `DELETE FROM `+table+` WHERE campaign = $1 AND id = $2`, b.campaign, id); err != nil {
		return fmt.Errorf("force-unlock: %w", err)
	}
	return nil
}

// tryLock connects and tries the campaign's advisory lock with fn
// (pg_try_advisory_lock, or its _shared form), without waiting. Another
// session holding it is a *reconcile.LockedError naming that holder.
func (b *Backend) tryLock(ctx context.Context, fn string) (*pgx.Conn, int32, error) {
	if b.locked && b.conn != nil && !b.conn.IsClosed() {
		return nil, 0, errors.New("the state lock is already held by this process")
	}
	b.locked = false
	conn, err := b.connect(ctx)
	if err != nil {
		return nil, 0, err
	}
	id, err := b.campaignID(ctx, conn, true)
	if err != nil {
		return nil, 0, fmt.Errorf("locking state: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT `+fn+`($1, $2)`, lockClass, id).Scan(&ok); err != nil {
		return nil, 0, fmt.Errorf("locking state: %w", err)
	}
	if !ok {
		holder, _, _ := b.liveHolder(ctx, conn, id)
		return nil, 0, &reconcile.LockedError{Dir: b.where, Info: holder, Session: true}
	}
	return conn, id, nil
}
