package pgstate

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// lockClass is the first key of the two-key advisory locks this package
// takes ("hypa"); the second is a campaign's id (its lock), or 0 for the
// schema migration. Claims and slots take one-key (bigint) locks, a
// hash of what they lock (keys.go).
const lockClass = 0x68797061

// migrations are the schema's versions, in order: version N is
// migrations[N-1]. A migration is never edited once released; a change
// is a new one.
var migrations = []string{
	// 1: campaigns, their migration records, and lock holders.
	`CREATE TABLE hyperagent_campaigns (
		id         serial PRIMARY KEY,
		workspace  text NOT NULL UNIQUE,
		lineage    text NOT NULL DEFAULT '',
		serial     bigint NOT NULL DEFAULT 0,
		doc        json NOT NULL DEFAULT '{}',
		updated_at timestamptz NOT NULL DEFAULT now()
	);
	CREATE TABLE hyperagent_migrations (
		campaign int NOT NULL REFERENCES hyperagent_campaigns (id) ON DELETE CASCADE,
		address  text NOT NULL,
		serial   bigint NOT NULL,
		record   json NOT NULL,
		PRIMARY KEY (campaign, address)
	);
	CREATE TABLE hyperagent_locks (
		campaign    int PRIMARY KEY REFERENCES hyperagent_campaigns (id) ON DELETE CASCADE,
		id          text NOT NULL,
		operation   text NOT NULL,
		pid         int NOT NULL,
		host        text NOT NULL,
		since       timestamptz NOT NULL,
		session_pid int NOT NULL
	);`,
	// 2: several processes on one campaign. A record's job_slot names the
	// converter whose limit its job counts against (reconcile's
	// MigrationState.JobSlot, filled here for the records version 1
	// stored); hyperagent_holders are the passes holding the campaign's
	// lock shared, hyperagent_claims who works on which migration. Both
	// only name holders for messages: the locks themselves are advisory
	// locks of the holders' sessions.
	`ALTER TABLE hyperagent_migrations ADD COLUMN job_slot text;
	UPDATE hyperagent_migrations SET job_slot = record->'job'->>'converter'
		WHERE coalesce(record->'job'->>'state', '') IN ('', 'queued', 'processing') AND record->'job'->>'converter' IS NOT NULL;
	CREATE INDEX hyperagent_migrations_job_slot ON hyperagent_migrations (campaign, job_slot) WHERE job_slot IS NOT NULL;
	CREATE TABLE hyperagent_holders (
		campaign    int NOT NULL REFERENCES hyperagent_campaigns (id) ON DELETE CASCADE,
		id          text NOT NULL,
		operation   text NOT NULL,
		pid         int NOT NULL,
		host        text NOT NULL,
		since       timestamptz NOT NULL,
		session_pid int NOT NULL,
		PRIMARY KEY (campaign, id)
	);
	CREATE TABLE hyperagent_claims (
		campaign    int NOT NULL REFERENCES hyperagent_campaigns (id) ON DELETE CASCADE,
		address     text NOT NULL,
		id          text NOT NULL,
		operation   text NOT NULL,
		pid         int NOT NULL,
		host        text NOT NULL,
		since       timestamptz NOT NULL,
		session_pid int NOT NULL,
		PRIMARY KEY (campaign, address)
	);`,
}

// SchemaVersion is the schema this build writes.
var SchemaVersion = len(migrations)

// migrate brings the database's schema to SchemaVersion, in one
// transaction, serialised with other processes by an advisory lock. A
// database whose schema is newer than this build's is refused: this
// build could misread it.
func migrate(ctx context.Context, conn *pgx.Conn) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockClass); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS hyperagent_schema (
			version    int PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM hyperagent_schema`).Scan(&have); err != nil {
			return err
		}
		if have > SchemaVersion {
			return fmt.Errorf("the database's hyperagent schema is version %d, and this build knows versions up to %d: use a newer hyperagent", have, SchemaVersion)
		}
		for v := have + 1; v <= SchemaVersion; v++ {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("schema version %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO hyperagent_schema (version) VALUES ($1)`, v); err != nil {
				return err
			}
		}
		return nil
	})
}
