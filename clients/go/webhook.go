package pdp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultWebhookTolerance is how far a delivery's timestamp may be from now
// before VerifyWebhook refuses it as a possible replay.
const DefaultWebhookTolerance = 5 * time.Minute

// WebhookVerificationError is a webhook delivery that is not authentic, or
// that is too old or from the future: Reason says which.
type WebhookVerificationError struct {
	PdpError
	Reason string
}

func (e *WebhookVerificationError) Unwrap() error { return &e.PdpError }

func webhookRefused(reason string) *WebhookVerificationError {
	return &WebhookVerificationError{
		PdpError: PdpError{Message: "webhook not verified: " + reason}, Reason: reason,
	}
}

// Webhook is a verified delivery: its id (stable across retries, to dedupe
// on), its timestamp and its body, the JSON event.
type Webhook struct {
	ID        string
	Timestamp time.Time
	Body      json.RawMessage
}

// WebhookOptions tune VerifyWebhook. Tolerance is how far the delivery's
// timestamp may be from Now (DefaultWebhookTolerance when zero); a negative
// Tolerance turns the time window off. Now defaults to time.Now.
type WebhookOptions struct {
	Tolerance time.Duration
	Now       func() time.Time
}

// VerifyWebhook checks a webhook delivery signed the Standard Webhooks way:
// the webhook-id, webhook-timestamp and webhook-signature headers, and an
// HMAC-SHA256 of "id.timestamp.body" keyed with secret ("whsec_" followed
// by base64; any other secret is used as it is). It returns the delivery,
// or *WebhookVerificationError. Pass the body exactly as received.
func VerifyWebhook(body []byte, header http.Header, secret string, options *WebhookOptions) (*Webhook, error) {
	var opts WebhookOptions
	if options != nil {
		opts = *options
	}
	id := header.Get("webhook-id")
	stamp := header.Get("webhook-timestamp")
	signatures := header.Get("webhook-signature")
	if id == "" || stamp == "" || signatures == "" {
		return nil, webhookRefused("missing webhook-id, webhook-timestamp or webhook-signature header")
	}
	seconds, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil || seconds < 0 || seconds > math.MaxInt64/int64(time.Second) {
		return nil, webhookRefused(fmt.Sprintf("webhook-timestamp %q is not a Unix time in seconds", stamp))
	}
	sent := time.Unix(seconds, 0)
	if opts.Tolerance >= 0 {
		tolerance := opts.Tolerance
		if tolerance == 0 {
			tolerance = DefaultWebhookTolerance
		}
		now := time.Now
		if opts.Now != nil {
			now = opts.Now
		}
		if age := now().Sub(sent); age > tolerance || age < -tolerance {
			return nil, webhookRefused(fmt.Sprintf("webhook-timestamp is %s from now, more than %s", age.Round(time.Second), tolerance))
		}
	}
	key, err := webhookKey(secret)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + stamp + "."))
	mac.Write(body)
	expected := mac.Sum(nil)
	// The header lists space-separated "v1,<base64>" signatures, several
	// while a secret is being rotated; any one that matches will do.
	for _, candidate := range strings.Fields(signatures) {
		version, encoded, found := strings.Cut(candidate, ",")
		if !found || version != "v1" {
			continue
		}
		signature, err := base64.StdEncoding.DecodeString(encoded)
		if err == nil && hmac.Equal(signature, expected) {
			return &Webhook{ID: id, Timestamp: sent, Body: json.RawMessage(body)}, nil
		}
	}
	return nil, webhookRefused("no v1 signature matches")
}

func webhookKey(secret string) ([]byte, error) {
	if secret == "" {
		return nil, webhookRefused("the secret is empty")
	}
	encoded, prefixed := strings.CutPrefix(secret, "whsec_")
	if !prefixed {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(key) == 0 {
		return nil, webhookRefused("the secret after whsec_ is not base64")
	}
	return key, nil
}
