package vsphere

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
)

var (
	_ plugins.Source        = (*Source)(nil)
	_ plugins.ExportPruner  = (*Source)(nil)
	_ plugins.ExportAdopter = (*Source)(nil)
	_ plugins.Limited       = (*Source)(nil)
	_ plugins.Closer        = (*Source)(nil)
)

// Source is one `source "vsphere"` block: a lazily opened session to a
// vCenter or ESXi host. It is safe for concurrent use.
type Source struct {
	set settings
	log hclog.Logger

	mu   sync.Mutex
	conn *conn

	// keepAlive is the idle time between session keep-alive calls.
	keepAlive time.Duration
	// timing bounds calls, downloads and waits, and paces retries.
	timing timing
	// retried, when set, hears of every retry (tests wait for one).
	retried func(what string, err error)
	// statfs reports the bytes free to an unprivileged user on the
	// filesystem holding a directory.
	statfs func(dir string) (uint64, error)
	// wrapTransport, when set, wraps the SOAP client's HTTP transport
	// (tests count round trips with it).
	wrapTransport func(http.RoundTripper) http.RoundTripper
	// reread counts the bytes read back from .part files to rebuild a
	// resumed download's hash (tests: a resume after a cut reads none).
	reread atomic.Int64
}

// Limits declares max_parallel_exports.
func (s *Source) Limits() plugins.Limits { return plugins.Limits{MaxParallel: s.set.exports} }
