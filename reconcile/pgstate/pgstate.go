package pgstate

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
)

// Backend is one campaign's state in a PostgreSQL database. It keeps one
// connection: the session that holds the campaign's lock, and over which
// it loads and writes. It contacts nothing until first used.
type Backend struct {
	cfg       *pgx.ConnConfig
	workspace string
	where     string

	conn     *pgx.Conn
	campaign int32 // the campaign row's id, 0 until known
	locked   bool  // this session holds the campaign's advisory lock
	shared   bool  // … shared (LockShared)
	// claims and slots are the claims and limit slots this session
	// holds (slot keys: slotKey). Like the lock, they end with it.
	claims map[string]bool
	slots  map[int64]bool
	// records is a digest of each migration record as stored at version
	// recordsAt (the last load or write): a write sends only the records
	// whose digest changed. Another version means a write sends them all.
	records   map[string]recordDigest
	recordsAt reconcile.Version
	// serials is the serial column of each record as this process last
	// read or wrote it: a record's version, which WriteRecord checks.
	serials map[string]int64
}

var (
	_ reconcile.Backend       = (*Backend)(nil)
	_ reconcile.SharedBackend = (*Backend)(nil)
	_ reconcile.QueueLocker   = (*Backend)(nil)
)

// Open returns the backend of workspace (reconcile.DefaultWorkspace when
// empty) in the database connStr names. It checks the connection
// string's syntax and contacts nothing.
func Open(connStr, workspace string) (*Backend, error) {
	if connStr == "" {
		return nil, fmt.Errorf("the pg state backend needs a connection string: set conn_str in the state block, or %s", schema.PGConnStrEnv)
	}
	cfg, err := pgx.ParseConfig(connStr)
	if err != nil {
		// pgx's message quotes the string, its password masked only on
		// a best-effort basis: none of it is kept.
		return nil, errors.New("the PostgreSQL connection string does not parse (see the formats libpq accepts: a postgres:// URL, or key=value pairs)")
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "hyperagent"
	}
	// The server ends the session of a host it no longer hears from
	// within ~25 s (10 s idle, then 3 probes 5 s apart), and with it
	// that host's lock, claims and slots, so another host can take its
	// migrations over; the default (the system's, often 2 hours) would
	// hold them that long. A host that stops hearing from the server
	// notices sooner (reconcile pings its session every few seconds).
	for k, v := range map[string]string{"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3"} {
		if cfg.RuntimeParams[k] == "" {
			cfg.RuntimeParams[k] = v
		}
	}
	if workspace == "" {
		workspace = reconcile.DefaultWorkspace
	}
	where := fmt.Sprintf("PostgreSQL (database %q on %s, workspace %q)", cfg.Database, cfg.Host, workspace)
	return &Backend{cfg: cfg, workspace: workspace, where: where}, nil
}

// NewStore opens the backend and returns a reconcile.Store over it.
func NewStore(connStr, workspace string) (*reconcile.Store, error) {
	b, err := Open(connStr, workspace)
	if err != nil {
		return nil, err
	}
	return reconcile.NewStore(b), nil
}

func (b *Backend) String() string { return b.where }

// errSessionLost: the session that held the lock (and claims, slots)
// is gone, and with it all of them; nothing may be written on a new one.
var errSessionLost = errors.New("the database session that held the state lock ended (hyperagent force-unlock, a server restart or a lost connection); nothing was written")

// holdsSession says the session holds what ends with it: the lock, a
// claim or a slot.
func (b *Backend) holdsSession() bool { return b.locked || len(b.claims) > 0 || len(b.slots) > 0 }

// connect makes the connection if there is none, migrating the schema
// first. A lost connection is made again only when it held nothing
// session-bound.
func (b *Backend) connect(ctx context.Context) (*pgx.Conn, error) {
	if b.conn != nil && !b.conn.IsClosed() {
		return b.conn, nil
	}
	if b.holdsSession() {
		return nil, errSessionLost
	}
	conn, err := pgx.ConnectConfig(ctx, b.cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", b.where, err)
	}
	if err := migrate(ctx, conn); err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("%s: migrating the schema: %w", b.where, err)
	}
	b.conn = conn
	return conn, nil
}

// campaignID finds (creating it when asked) the campaign's row.
func (b *Backend) campaignID(ctx context.Context, conn *pgx.Conn, create bool) (int32, error) {
	if b.campaign != 0 {
		return b.campaign, nil
	}
	if create {
		if _, err := conn.Exec(ctx, `INSERT INTO hyperagent_campaigns (workspace) VALUES ($1) ON CONFLICT (workspace) DO NOTHING`, b.workspace); err != nil {
			return 0, err
		}
	}
	err := conn.QueryRow(ctx, `SELECT id FROM hyperagent_campaigns WHERE workspace = $1`, b.workspace).Scan(&b.campaign)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return b.campaign, err
}

// Workspaces lists the campaigns with a state written, sorted.
func (b *Backend) Workspaces(ctx context.Context) ([]string, error) {
	conn, err := b.connect(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, `SELECT workspace FROM hyperagent_campaigns WHERE serial > 0`)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	sort.Strings(out)
	return out, nil
}

// Close ends the session (and so releases a lock it still holds).
func (b *Backend) Close() error {
	if b.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	err := b.conn.Close(ctx)
	b.conn, b.locked, b.shared, b.claims, b.slots = nil, false, false, nil, nil
	return err
}
