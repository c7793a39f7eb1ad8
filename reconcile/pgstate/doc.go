// Package pgstate is the PostgreSQL state backend (reconcile.Backend):
// several campaigns share one database, one row set per workspace name.
//
// The schema is versioned (hyperagent_schema) and migrated by the tool
// itself, once per connection, under a transaction-level advisory lock so
// that processes starting together migrate once. A campaign is a row of
// hyperagent_campaigns (lineage, serial, and the state's top-level fields
// as the local file has them); each migration's record is a row of
// hyperagent_migrations holding exactly the JSON the local file would, so
// the database holds what the file holds and no more: no configuration
// value, no connection string.
//
// A write is one transaction: it locks the campaign row, refuses (with a
// *reconcile.ConflictError naming both versions) unless the stored
// lineage and serial are those the writer read, writes only the records
// that changed since this process last read or wrote them, and moves the
// serial. The campaign's lock is a session-level advisory lock, held by
// the connection this backend keeps: the server drops it when the
// process dies, so a killed holder never leaves a lock behind, and its
// holder record (hyperagent_locks) is replaced by the next one.
// force-unlock ends the holder's session.
//
// The connection string is a secret: it is never printed, stored or put
// in an error; String names only the host, database and workspace.
//
// It imports reconcile, schema (the name of the connection string's
// environment variable) and pgx; nothing of the agent or the CLI.
package pgstate
