package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/hypersdk/hyperagent/schema"
)

// Digests returns the digests of the settings each step consumes. Plugin
// addresses are included: moving a migration to another target redefines
// it elsewhere.
func Digests(m *schema.Migration) StepDigests {
	return StepDigests{
		Export: digestOf(struct {
			Source string
			VM     string
			Export schema.ExportSettings
		}{m.Source.String(), m.VM, m.Export}),
		Convert: digestOf(struct {
			Converter string
			Convert   schema.ConvertSettings
		}{m.Converter.String(), m.Convert}),
		Define: digestOf(struct {
			Target string
			Domain schema.DomainSettings
		}{m.Target.String(), m.Domain}),
	}
}

func digestOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
