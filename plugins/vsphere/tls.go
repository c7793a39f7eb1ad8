package vsphere

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25/soap"
)

// ErrThumbprintMismatch is wrapped when a pinned thumbprint does not match
// the server's certificate.
var ErrThumbprintMismatch = errors.New("certificate thumbprint does not match the pinned thumbprint")

// certError reports a certificate hyperagent does not trust, with the
// server's SHA-1 thumbprint so the user can pin it (as govc prints it).
type certError struct {
	addr       string
	thumbprint string // the server's SHA-1, colon hex
	pinned     string // the configured one, when pinning failed
	err        error
}

func (e *certError) Error() string {
	if e.pinned != "" {
		return fmt.Sprintf("%s: server %s presents SHA-1 thumbprint %s, pinned is %s",
			ErrThumbprintMismatch, e.addr, e.thumbprint, e.pinned)
	}
	return fmt.Sprintf("%v: server %s has SHA-1 thumbprint %s (pin it with thumbprint = %q, or trust its CA with ca_file)",
		e.err, e.addr, e.thumbprint, e.thumbprint)
}

func (e *certError) Unwrap() error { return e.err }

// tlsDialer dials with the context's deadline and verifies the server
// itself, so that every failure can name the certificate's thumbprint.
// Pinned thumbprints are looked up per host in the soap client: a real
// vCenter hands out NFC device URLs on ESXi hosts with their own
// thumbprint, which nfc.Lease registers there.
type tlsDialer struct {
	sc       *soap.Client
	roots    *x509.CertPool // nil: the system's
	insecure bool
}

func (d *tlsDialer) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	raw, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	pin := d.sc.Thumbprint(addr)
	conf := &tls.Config{
		ServerName: host,
		// Verification happens in VerifyConnection, which sees the
		// certificate whatever the outcome.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return d.verify(cs, addr, host, pin)
		},
	}
	conn := tls.Client(raw, conf)
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return conn, nil
}

func (d *tlsDialer) verify(cs tls.ConnectionState, addr, host, pin string) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("server %s presented no certificate", addr)
	}
	leaf := cs.PeerCertificates[0]
	got := thumbprintSHA1(leaf)
	if pin != "" {
		if strings.EqualFold(pin, got) || strings.EqualFold(pin, thumbprintSHA256(leaf)) {
			return nil
		}
		return &certError{addr: addr, thumbprint: got, pinned: pin, err: ErrThumbprintMismatch}
	}
	if d.insecure {
		return nil
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: d.roots, DNSName: host, Intermediates: inter}); err != nil {
		return &certError{addr: addr, thumbprint: got, err: err}
	}
	return nil
}

func thumbprintSHA1(c *x509.Certificate) string {
	sum := sha1.Sum(c.Raw)
	return colonHex(sum[:])
}

func thumbprintSHA256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return colonHex(sum[:])
}

func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}
