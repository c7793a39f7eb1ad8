package agent

import (
	"reflect"
	"testing"

	"github.com/hypersdk/hyperagent/docs"
)

// The API's schema (docs/schema/api.json) declares exactly the fields of
// the answers' Go types, so that a field added to an answer fails here
// until the schema describes it.
func TestAPISchemaDeclaresEveryField(t *testing.T) {
	for _, tc := range []struct {
		v       any
		pointer string
	}{
		{Status{}, "/$defs/status/properties"},
		{Diagnostic{}, "/$defs/config_diagnostic/properties"},
		{RetryStatus{}, "/$defs/retry/properties"},
		{ConverterStatus{}, "/$defs/converter/properties"},
		{MigrationsResponse{}, "/$defs/migrations/properties"},
		{MigrationResponse{}, "/$defs/migration/properties"},
		{MigrationStatus{}, "/$defs/migration_status/properties"},
		{Progress{}, "/$defs/progress/properties"},
		{ByteProgress{}, "/$defs/progress/properties/bytes/oneOf/1/properties"},
		{Accepted{}, "/$defs/accepted/properties"},
		{SuspendResponse{}, "/$defs/suspended/properties"},
		{SuspendRequest{}, "/$defs/suspend_request/properties"},
		{APIError{}, "/$defs/error/properties"},
	} {
		if err := docs.FieldsMatch(reflect.TypeOf(tc.v), "api.json", tc.pointer); err != nil {
			t.Error(err)
		}
	}
}
