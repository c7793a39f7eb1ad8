package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// The headers of a delivery.
const (
	// HeaderEvent is the event's type.
	HeaderEvent = "X-Hyperagent-Event"
	// HeaderDelivery is the event's id, the same on every retry.
	HeaderDelivery = "X-Hyperagent-Delivery"
	// HeaderTimestamp is when this attempt was sent, in seconds since
	// the epoch; it is signed with the body.
	HeaderTimestamp = "X-Hyperagent-Timestamp"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256, keyed by the
	// webhook's secret, of the timestamp, ".", and the body (Sign). Sent
	// only when the webhook has a secret.
	HeaderSignature = "X-Hyperagent-Signature"
)

// Sign is the HeaderSignature value of body sent at timestamp (the
// HeaderTimestamp value): binding the time into the signature lets a
// receiver refuse a captured request replayed later.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ErrBadSignature is a signature that does not match.
var ErrBadSignature = errors.New("the signature does not match the body and timestamp")

// Verify checks a delivery's signature in constant time, as a receiver
// written in Go would. A receiver should also refuse a timestamp far
// from its clock.
func Verify(secret, timestamp, signature string, body []byte) error {
	if !strings.HasPrefix(signature, "sha256=") {
		return ErrBadSignature
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body))) {
		return ErrBadSignature
	}
	return nil
}
