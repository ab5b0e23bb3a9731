package pdp_test

// The shared case table (clients/testdata/cases.json), run in table order
// against a sidecar of its own on clients/testdata/snapshot.yaml with fresh
// state. Each answer is turned into a map named as the table names things
// (lowerCamelCase), and every key the case expects must be there and match.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	pdp "github.com/pdp-dev/pdp/clients/go"
)

type tableCase struct {
	Name    string         `json:"name"`
	Call    string         `json:"call"`
	Request map[string]any `json:"request"`
	Expect  map[string]any `json:"expect"`
}

func TestCaseTable(t *testing.T) {
	testdata := filepath.Join(repoRoot, "clients", "testdata")
	raw, err := os.ReadFile(filepath.Join(testdata, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Snapshot string      `json:"snapshot"`
		Cases    []tableCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	if len(table.Cases) == 0 {
		t.Fatal("cases.json has no cases")
	}
	side := startTestSidecar(t, filepath.Join(testdata, table.Snapshot), "127.0.0.1:0")
	client := connect(t, side.target, pdp.WithTimeout(10*time.Second))
	for _, c := range table.Cases {
		t.Run(c.Name, func(t *testing.T) {
			request := &fields{t: t, values: c.Request}
			observed, err := runCase(client, c.Call, request)
			if errors.Is(err, errUnknownCall) {
				t.Skipf("the Go client has no %q call", c.Call)
			}
			request.checkAllRead()
			if err != nil {
				observed = observeError(err)
			}
			for key, want := range c.Expect {
				got, ok := observed[key]
				if !ok {
					t.Errorf("%s: the answer has no %q (answer: %v)", c.Name, key, observed)
					continue
				}
				if !matches(want, got) {
					t.Errorf("%s: %s: want %v, got %v (answer: %v)", c.Name, key, want, got, observed)
				}
			}
		})
	}
}

var errUnknownCall = errors.New("unknown call")

func runCase(client *pdp.Client, call string, r *fields) (map[string]any, error) {
	ctx := context.Background()
	switch call {
	case "enforce":
		result, err := client.Enforce(ctx, r.enforceRequest())
		if err != nil {
			return nil, err
		}
		return observeEnforce(result), nil
	case "enforceBatch":
		var requests []pdp.EnforceRequest
		for _, item := range r.list("requests") {
			requests = append(requests, (&fields{t: r.t, values: item.(map[string]any)}).enforceRequest())
		}
		outcomes, err := client.EnforceBatch(ctx, requests)
		if err != nil {
			return nil, err
		}
		var answers []any
		for _, outcome := range outcomes {
			if outcome.Err != nil {
				answers = append(answers, observeError(outcome.Err))
			} else {
				answers = append(answers, observeEnforce(outcome.Result))
			}
		}
		return map[string]any{"responses": answers}, nil
	case "authorize":
		result, err := client.Authorize(ctx, r.text("sourceAgentId"), r.text("targetAgentId"), pdp.Action(r.text("action")))
		if err != nil {
			return nil, err
		}
		var denial any
		if result.Denial != "" {
			denial = result.Denial
		}
		return map[string]any{"allowed": result.Allowed, "denial": denial, "reason": result.Reason}, nil
	case "agentStatus":
		status, err := client.AgentStatus(ctx, r.text("agentId"))
		if err != nil {
			return nil, err
		}
		budgets := []any{}
		for _, b := range status.Budgets {
			budgets = append(budgets, map[string]any{
				"policyId": b.PolicyID, "policyName": b.PolicyName, "period": b.Period,
				"limitUsd": b.LimitUSD, "spentUsd": b.SpentUSD,
			})
		}
		return map[string]any{
			"agentName": status.AgentName, "known": status.Known, "paused": status.Paused,
			"reason": status.Reason, "budgets": budgets,
		}, nil
	case "reportUsage":
		result, err := client.ReportUsage(ctx, r.text("agentId"), r.number("costUsd"), r.text("requestId"))
		if err != nil {
			return nil, err
		}
		return map[string]any{"duplicate": result.Duplicate, "dailySpendUsd": result.DailySpendUSD}, nil
	case "awaitApproval":
		seconds := r.number("timeoutSeconds")
		result, err := client.AwaitApproval(ctx, r.text("approvalId"), time.Duration(seconds*float64(time.Second)))
		if err != nil {
			return nil, err
		}
		return map[string]any{"state": string(result.State), "reviewer": result.Reviewer}, nil
	case "submitTrace":
		result, err := client.SubmitTrace(ctx, pdp.Trace{
			AgentID: r.text("agentId"), Input: r.optionalText("input"), Output: r.optionalText("output"),
			CostUSD: r.number("costUsd"), Model: r.text("model"), Tool: r.text("tool"),
			Metadata: r.metadata("metadata"), RequestID: r.text("requestId"),
		})
		if err != nil {
			return nil, err
		}
		return map[string]any{
			"violationTypes": violationTypes(result.Violations), "anomaly": result.Anomaly,
		}, nil
	case "verifyWebhook":
		header := http.Header{}
		for name, value := range r.object("headers") {
			header.Set(name, value.(string))
		}
		options := &pdp.WebhookOptions{Tolerance: -1}
		if seconds := r.optionalNumber("toleranceSeconds"); seconds != nil {
			options.Tolerance = time.Duration(*seconds * float64(time.Second))
		}
		webhook, err := pdp.VerifyWebhook([]byte(r.text("body")), header, r.text("secret"), options)
		if err != nil {
			return nil, err
		}
		var event any
		if err := json.Unmarshal(webhook.Body, &event); err != nil {
			return nil, err
		}
		return map[string]any{"event": event}, nil
	}
	return nil, errUnknownCall
}

func observeEnforce(result *pdp.EnforceResult) map[string]any {
	findings := []any{}
	for _, f := range result.PiiFindings {
		findings = append(findings, map[string]any{
			"field": f.Field, "piiType": f.PiiType, "start": float64(f.Start), "end": float64(f.End),
		})
	}
	return map[string]any{
		"decision":       string(result.Decision),
		"violationTypes": violationTypes(result.Violations),
		"violations":     observeViolations(result.Violations),
		"maskedInput":    optional(result.MaskedInput),
		"maskedOutput":   optional(result.MaskedOutput),
		"piiFindings":    findings,
		"hasApprovalId":  result.ApprovalID != "",
	}
}

func observeError(err error) map[string]any {
	observed := map[string]any{}
	var (
		blocked       *pdp.PolicyBlockedError
		paused        *pdp.AgentPausedError
		invalid       *pdp.InvalidRequestError
		late          *pdp.DeadlineExceededError
		unavailable   *pdp.SidecarUnavailableError
		unimplemented *pdp.UnimplementedError
		webhook       *pdp.WebhookVerificationError
		base          *pdp.PdpError
	)
	switch {
	case errors.As(err, &blocked):
		observed["error"] = "PolicyBlockedError"
		observed["violationTypes"] = violationTypes(blocked.Violations)
		observed["violations"] = observeViolations(blocked.Violations)
	case errors.As(err, &paused):
		observed["error"] = "AgentPausedError"
		observed["reason"] = paused.Reason
	case errors.As(err, &invalid):
		observed["error"] = "InvalidRequestError"
		observed["field"] = tableName(invalid.Field)
		observed["local"] = invalid.Local
	case errors.As(err, &late):
		observed["error"] = "DeadlineExceededError"
	case errors.As(err, &unavailable):
		observed["error"] = "SidecarUnavailableError"
	case errors.As(err, &unimplemented):
		observed["error"] = "UnimplementedError"
	case errors.As(err, &webhook):
		observed["error"] = "WebhookVerificationError"
	case errors.As(err, &base):
		observed["error"] = "PdpError"
	default:
		observed["error"] = fmt.Sprintf("%T", err)
	}
	observed["message"] = err.Error()
	return observed
}

func violationTypes(violations []pdp.Violation) []any {
	types := []any{}
	for _, v := range violations {
		types = append(types, v.PolicyType)
	}
	return types
}

func observeViolations(violations []pdp.Violation) []any {
	out := []any{}
	for _, v := range violations {
		out = append(out, map[string]any{
			"policyId": v.PolicyID, "policyName": v.PolicyName, "policyType": v.PolicyType,
			"enforcementMode": string(v.EnforcementMode), "severity": v.Severity, "message": v.Message,
		})
	}
	return out
}

func optional(text *string) any {
	if text == nil {
		return nil
	}
	return *text
}

var snakePart = regexp.MustCompile(`_([a-z])`)

// tableName turns the client's field name (the proto's, "requests[1].agent_id")
// into the table's ("requests[1].agentId").
func tableName(field string) string {
	return snakePart.ReplaceAllStringFunc(field, func(part string) string { return strings.ToUpper(part[1:]) })
}

// matches compares an expected JSON value with an observed one: objects on
// the expected keys only, lists element by element, numbers as float64.
func matches(want, got any) bool {
	switch want := want.(type) {
	case map[string]any:
		observed, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for key, value := range want {
			if have, ok := observed[key]; !ok || !matches(value, have) {
				return false
			}
		}
		return true
	case []any:
		observed, ok := got.([]any)
		if !ok || len(observed) != len(want) {
			return false
		}
		for i := range want {
			if !matches(want[i], observed[i]) {
				return false
			}
		}
		return true
	case float64:
		have, ok := got.(float64)
		return ok && math.Abs(have-want) <= 1e-9*math.Max(1, math.Abs(want))
	}
	return reflect.DeepEqual(want, got)
}

// fields reads a case's request; every key must be read, so a key the
// runner does not know fails the case instead of being ignored.
type fields struct {
	t      *testing.T
	values map[string]any
	read   map[string]bool
}

func (f *fields) get(key string) any {
	if f.read == nil {
		f.read = map[string]bool{}
	}
	f.read[key] = true
	return f.values[key]
}

func (f *fields) checkAllRead() {
	for key := range f.values {
		if !f.read[key] {
			f.t.Errorf("the runner does not read request key %q", key)
		}
	}
}

func (f *fields) text(key string) string {
	value, _ := f.get(key).(string)
	return value
}

func (f *fields) optionalText(key string) *string {
	if value, ok := f.get(key).(string); ok {
		return &value
	}
	return nil
}

func (f *fields) optionalNumber(key string) *float64 {
	switch value := f.get(key).(type) {
	case float64:
		return &value
	case string: // proto3 JSON's "NaN", "Infinity", "-Infinity"
		special := map[string]float64{"NaN": math.NaN(), "Infinity": math.Inf(1), "-Infinity": math.Inf(-1)}
		if number, ok := special[value]; ok {
			return &number
		}
		f.t.Fatalf("%q is not a number: %q", key, value)
	}
	return nil
}

func (f *fields) number(key string) float64 {
	if value := f.optionalNumber(key); value != nil {
		return *value
	}
	return 0
}

func (f *fields) object(key string) map[string]any {
	value, _ := f.get(key).(map[string]any)
	return value
}

func (f *fields) list(key string) []any {
	value, _ := f.get(key).([]any)
	return value
}

func (f *fields) metadata(key string) map[string]string {
	object := f.object(key)
	if len(object) == 0 {
		return nil
	}
	out := make(map[string]string, len(object))
	for k, v := range object {
		out[k] = v.(string)
	}
	return out
}

func (f *fields) enforceRequest() pdp.EnforceRequest {
	request := pdp.EnforceRequest{
		AgentID:          f.text("agentId"),
		Input:            f.optionalText("input"),
		Output:           f.optionalText("output"),
		EstimatedCostUSD: f.optionalNumber("estimatedCostUsd"),
		Model:            f.text("model"),
		Tool:             f.text("tool"),
		Metadata:         f.metadata("metadata"),
		RequestID:        f.text("requestId"),
		ApprovalID:       f.text("approvalId"),
	}
	f.checkAllRead()
	return request
}
