package pdp_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	pdp "github.com/pdp-dev/pdp/clients/go"
)

// The Standard Webhooks known-answer vector.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = "1614265330"
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func vectorHeader(signature string) http.Header {
	header := http.Header{}
	header.Set("webhook-id", vectorID)
	header.Set("webhook-timestamp", vectorTimestamp)
	header.Set("webhook-signature", signature)
	return header
}

var noTimeWindow = &pdp.WebhookOptions{Tolerance: -1}

func TestWebhookKnownAnswer(t *testing.T) {
	webhook, err := pdp.VerifyWebhook([]byte(vectorBody), vectorHeader(vectorSignature), vectorSecret, noTimeWindow)
	if err != nil {
		t.Fatal(err)
	}
	if webhook.ID != vectorID || webhook.Timestamp.Unix() != 1614265330 || string(webhook.Body) != vectorBody {
		t.Fatalf("delivery not returned as sent: %+v", webhook)
	}
	// One good signature among several (a secret being rotated) is enough.
	rotated := "v1,bm90IGl0 v2,whatever " + vectorSignature
	if _, err := pdp.VerifyWebhook([]byte(vectorBody), vectorHeader(rotated), vectorSecret, noTimeWindow); err != nil {
		t.Fatal(err)
	}
}

func TestWebhookRefusals(t *testing.T) {
	body := []byte(vectorBody)
	for _, c := range []struct {
		name   string
		body   []byte
		header http.Header
		secret string
		opts   *pdp.WebhookOptions
		reason string
	}{
		{"tampered body", []byte(`{"test": 2432232315}`), vectorHeader(vectorSignature), vectorSecret, noTimeWindow, "no v1 signature matches"},
		{"wrong secret", body, vectorHeader(vectorSignature), "whsec_" + base64.StdEncoding.EncodeToString([]byte("other")), noTimeWindow, "no v1 signature matches"},
		{"missing signature", body, vectorHeader(""), vectorSecret, noTimeWindow, "missing"},
		{"bad timestamp", body, func() http.Header { h := vectorHeader(vectorSignature); h.Set("webhook-timestamp", "soon"); return h }(), vectorSecret, noTimeWindow, "not a Unix time"},
		{"old delivery", body, vectorHeader(vectorSignature), vectorSecret, nil, "from now"},
		{"bad secret", body, vectorHeader(vectorSignature), "whsec_***", noTimeWindow, "not base64"},
		{"empty secret", body, vectorHeader(vectorSignature), "", noTimeWindow, "empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := pdp.VerifyWebhook(c.body, c.header, c.secret, c.opts)
			var refused *pdp.WebhookVerificationError
			if !errors.As(err, &refused) || !strings.Contains(refused.Reason, c.reason) {
				t.Fatalf("want a refusal saying %q, got %v", c.reason, err)
			}
		})
	}
}

func TestWebhookTimeWindow(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a receiver's secret"))
	now := time.Unix(1_900_000_000, 0)
	body := []byte(`{"type":"agent.paused"}`)
	sign := func(stamp time.Time) http.Header {
		seconds := strconv.FormatInt(stamp.Unix(), 10)
		mac := hmac.New(sha256.New, []byte("a receiver's secret"))
		mac.Write([]byte("msg_1." + seconds + "." + string(body)))
		header := http.Header{}
		header.Set("webhook-id", "msg_1")
		header.Set("webhook-timestamp", seconds)
		header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		return header
	}
	clock := &pdp.WebhookOptions{Now: func() time.Time { return now }}
	for offset, ok := range map[time.Duration]bool{
		0: true, -4 * time.Minute: true, 4 * time.Minute: true, -6 * time.Minute: false, 6 * time.Minute: false,
	} {
		_, err := pdp.VerifyWebhook(body, sign(now.Add(offset)), secret, clock)
		if (err == nil) != ok {
			t.Errorf("sent %s from now: want verified=%v, got %v", offset, ok, err)
		}
	}
	narrow := &pdp.WebhookOptions{Now: clock.Now, Tolerance: time.Minute}
	if _, err := pdp.VerifyWebhook(body, sign(now.Add(-2*time.Minute)), secret, narrow); err == nil {
		t.Error("a 1 minute tolerance must refuse a 2 minute old delivery")
	}
}
