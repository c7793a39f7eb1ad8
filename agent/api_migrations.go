package agent

import (
	"fmt"
	"net/http"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

// MigrationsResponse answers GET /v1/migrations.
type MigrationsResponse struct {
	FormatVersion string `json:"format_version"`
	// Planned is false until the first pass planned: the list is empty
	// then because nothing is known yet, not because nothing is there.
	Planned    bool              `json:"planned"`
	Migrations []MigrationStatus `json:"migrations"`
}

// MigrationResponse answers GET /v1/migrations/ADDR.
type MigrationResponse struct {
	FormatVersion string          `json:"format_version"`
	Migration     MigrationStatus `json:"migration"`
}

func (a *Agent) serveMigrations(w http.ResponseWriter, r *http.Request) {
	ms := a.Migrations()
	resp := MigrationsResponse{FormatVersion: APIVersion, Planned: ms != nil, Migrations: ms}
	if ms == nil {
		resp.Migrations = []MigrationStatus{}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *Agent) serveMigration(w http.ResponseWriter, r *http.Request) {
	addr, err := addrs.ParseMigration(r.PathValue("addr"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ms := a.Migrations()
	if ms == nil {
		writeError(w, http.StatusNotFound, "no pass has planned yet")
		return
	}
	for _, m := range ms {
		if m.Address == addr.String() {
			writeJSON(w, http.StatusOK, MigrationResponse{FormatVersion: APIVersion, Migration: m})
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("%s is not in the last plan", addr))
}
