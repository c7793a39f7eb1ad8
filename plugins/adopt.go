package plugins

import "context"

// ExportAdopter is the optional ability to recognise a completed export
// already sitting in req.Dir: one that finished after the engine recorded
// its intent to export but before it recorded the result (the process was
// killed in between). Adopting it instead of exporting again keeps "every
// export happens once". ok is false when the directory holds no complete
// export of req.VM; a partial one is never adopted.
type ExportAdopter interface {
	AdoptExport(ctx context.Context, req ExportRequest) (res ExportResult, ok bool, err error)
}
