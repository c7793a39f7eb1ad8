package vcsimtest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"sync"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// The simulator's NFC downloads go through Server.serveNFC, which serves
// them the way the chosen NFCMode says, records each request, and plays
// the injected NFCFault: what a network or a server does to a download.

// NFCMode is how device URLs are served.
type NFCMode int

const (
	// NFCStock is vcsim's own handler: no Content-Length (chunked
	// framing), Range ignored (200 and the whole file).
	NFCStock NFCMode = iota
	// NFCRanges serves like a static file server (http.ServeContent):
	// Content-Length, an ETag, and Range requests answered 206.
	NFCRanges
	// NFCCloseDelimited sends neither Content-Length nor chunked framing:
	// the body ends when the server closes the connection, as HTTP/1.0
	// allowed, so a cut connection looks like the end.
	NFCCloseDelimited
)

// NFCFaultKind is what happens to a response body once After bytes of it
// were sent.
type NFCFaultKind string

const (
	// NFCCut closes the connection without ending the body.
	NFCCut NFCFaultKind = "cut"
	// NFCStall sends nothing more until the client hangs up.
	NFCStall NFCFaultKind = "stall"
	// NFCEnd ends the body cleanly, short: what a proxy that lost the
	// rest would send.
	NFCEnd NFCFaultKind = "end"
)

// NFCFault hits the next Times NFC GETs (every one while Times is 0).
type NFCFault struct {
	Kind  NFCFaultKind
	After int64
	Times int
}

// NFCRequest is one NFC GET as served.
type NFCRequest struct {
	Path   string
	Range  string // the request's Range header
	Status int
	Sent   int64        // body bytes written to the connection
	Fault  NFCFaultKind // the fault that hit it, if any
}

// nfcFile is one device URL's file.
type nfcFile struct {
	path, key string
	disk      bool
}

type nfcState struct {
	mu       sync.Mutex
	mode     NFCMode
	fault    *NFCFault
	requests []NFCRequest
	files    map[string]map[string]nfcFile // lease id → URL file name
	served   map[string]map[string]bool
}

// SetNFC chooses how device URLs are served from now on.
func (s *Server) SetNFC(mode NFCMode) {
	s.nfc.mu.Lock()
	defer s.nfc.mu.Unlock()
	s.nfc.mode = mode
}

// InjectNFC makes the next NFC GETs fail as f says.
func (s *Server) InjectNFC(f NFCFault) {
	s.nfc.mu.Lock()
	defer s.nfc.mu.Unlock()
	s.nfc.fault = &f
}

// NFCRequests lists the NFC GETs served so far, in order.
func (s *Server) NFCRequests() []NFCRequest {
	s.nfc.mu.Lock()
	defer s.nfc.mu.Unlock()
	return append([]NFCRequest(nil), s.nfc.requests...)
}

// takeFault returns the fault for one more GET, counting it down.
func (n *nfcState) takeFault() *NFCFault {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fault == nil {
		return nil
	}
	f := *n.fault
	if n.fault.Times > 0 {
		if n.fault.Times--; n.fault.Times == 0 {
			n.fault = nil
		}
	}
	return &f
}

func (s *Server) serveNFC(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		simulator.ServeNFC(w, r) // uploads: vcsim's
		return
	}
	lease, name := r.PathValue("lease"), r.PathValue("name")
	s.nfc.mu.Lock()
	mode := s.nfc.mode
	file, known := s.nfc.files[lease][name]
	if known {
		if s.nfc.served[lease] == nil {
			s.nfc.served[lease] = map[string]bool{}
		}
		s.nfc.served[lease][name] = true
	}
	s.nfc.mu.Unlock()
	m := &meter{fault: s.nfc.takeFault(), stop: s.stop, gone: r.Context().Done()}
	rec := NFCRequest{Path: r.URL.Path, Range: r.Header.Get("Range")}
	defer func() {
		rec.Sent = m.sent
		if m.hit {
			rec.Fault = m.fault.Kind
		}
		s.nfc.mu.Lock()
		s.nfc.requests = append(s.nfc.requests, rec)
		s.nfc.mu.Unlock()
	}()
	if mode != NFCStock && !known {
		rec.Status = http.StatusNotFound
		http.NotFound(w, r)
		return
	}
	switch mode {
	case NFCStock:
		rw := &meteredResponse{ResponseWriter: w, m: m}
		m.dst, m.flush = w, func() { _ = http.NewResponseController(w).Flush() }
		simulator.ServeNFC(rw, r)
		rec.Status = rw.status
	case NFCRanges:
		rec.Status = s.serveRanges(w, r, file.path, m)
	case NFCCloseDelimited:
		rec.Status = serveCloseDelimited(w, r, file.path, m)
		return
	}
	if m.hit && m.fault.Kind != NFCEnd {
		panic(http.ErrAbortHandler) // close the connection before the body's end
	}
}

func (s *Server) serveRanges(w http.ResponseWriter, r *http.Request, name string, m *meter) int {
	f, err := os.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return http.StatusNotFound
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()))
	rw := &meteredResponse{ResponseWriter: w, m: m}
	m.dst, m.flush = w, func() { _ = http.NewResponseController(w).Flush() }
	http.ServeContent(rw, r, path.Base(name), fi.ModTime(), f)
	return rw.status
}

// serveCloseDelimited takes the connection over and writes a response
// whose body ends where the connection does.
func serveCloseDelimited(w http.ResponseWriter, r *http.Request, name string, m *meter) int {
	f, err := os.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return http.StatusNotFound
	}
	defer f.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	defer conn.Close()
	gone := make(chan struct{})
	go func() { // the client hangs up: its read of our side ends
		_, _ = io.Copy(io.Discard, conn)
		close(gone)
	}()
	m.gone = gone
	m.dst, m.flush = brw, func() { _ = brw.Flush() }
	_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
	_, _ = io.Copy(m, f)
	_ = brw.Flush()
	return http.StatusOK
}

// errFault ends a copy that a fault interrupted.
var errFault = errors.New("vcsimtest: injected NFC fault")

// meter counts body bytes on their way out and plays the fault.
type meter struct {
	dst   io.Writer
	flush func()
	fault *NFCFault
	stop  <-chan struct{} // the server closes
	gone  <-chan struct{} // the client hung up
	sent  int64
	hit   bool
}

func (m *meter) Write(p []byte) (int, error) {
	if m.hit {
		return 0, errFault
	}
	if m.fault == nil || m.sent+int64(len(p)) < m.fault.After {
		n, err := m.dst.Write(p)
		m.sent += int64(n)
		return n, err
	}
	k := int(m.fault.After - m.sent)
	n, err := m.dst.Write(p[:k])
	m.sent += int64(n)
	m.hit = true
	m.flush()
	if err != nil {
		return n, err
	}
	if m.fault.Kind == NFCStall {
		select {
		case <-m.gone:
		case <-m.stop:
		}
	}
	return n, errFault
}

type meteredResponse struct {
	http.ResponseWriter
	m      *meter
	status int
}

// WriteHeader passes the first status on. vcsim's handler sets its status
// after the body, which net/http ignores with a complaint; it is dropped
// here instead.
func (r *meteredResponse) WriteHeader(code int) {
	if r.status != 0 {
		return
	}
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *meteredResponse) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.m.Write(p)
}

// Flush lets http.ServeContent's writes through at once when asked.
func (r *meteredResponse) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

// recordLeaseFiles remembers which local file each device URL of a new
// lease serves, for the modes that serve files themselves and for the
// manifest.
func (s *Server) recordLeaseFiles(vm *simulator.VirtualMachine, l *simulator.HttpNfcLease) error {
	if l.Info == nil {
		return fmt.Errorf("vcsim: lease %s has no info", l.Self.Value)
	}
	local := map[string]string{}
	for _, d := range vm.Config.Hardware.Device {
		b, ok := d.GetVirtualDevice().Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok {
			continue
		}
		var p object.DatastorePath
		if !p.FromString(b.GetVirtualDeviceFileBackingInfo().FileName) {
			continue
		}
		if name, err := s.datastoreFile(p); err == nil { // else served by vcsim alone
			local[path.Base(p.Path)] = name
		}
	}
	files := map[string]nfcFile{}
	for _, du := range l.Info.DeviceUrl {
		name := du.TargetId
		if name == "" {
			name = path.Base(du.Url)
		}
		if local[name] != "" {
			files[name] = nfcFile{path: local[name], key: du.Key, disk: du.Disk != nil && *du.Disk}
		}
	}
	s.nfc.mu.Lock()
	defer s.nfc.mu.Unlock()
	s.nfc.files[l.Self.Value] = files
	return nil
}

// manifest is what HttpNfcLeaseGetManifest answers for an export lease, as
// vCenter does: one entry per file downloaded, with the size of the file
// the server sends.
func (s *Server) manifest(lease string) []types.HttpNfcLeaseManifestEntry {
	s.nfc.mu.Lock()
	defer s.nfc.mu.Unlock()
	var out []types.HttpNfcLeaseManifestEntry
	for name, f := range s.nfc.files[lease] {
		if !s.nfc.served[lease][name] {
			continue
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			continue
		}
		out = append(out, types.HttpNfcLeaseManifestEntry{Key: f.key, Size: fi.Size(), Disk: f.disk})
	}
	return out
}
