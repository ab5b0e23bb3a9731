package pdp

// Requests -> protobuf (with the checks the client can make before sending)
// and protobuf answers -> the client's plain result types. Enum values map
// to lowercase names taken from the generated enum tables, so a value the
// contract adds later comes through as its name rather than failing.

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pdp-dev/pdp/clients/go/pdpv1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// lowercaseNames is {number: "name"} for every value but UNSPECIFIED,
// prefix dropped: ENFORCEMENT_MODE_BLOCK -> "block".
func lowercaseNames(names map[int32]string, prefix string) map[int32]string {
	out := make(map[int32]string, len(names))
	for number, name := range names {
		if number != 0 {
			out[number] = strings.ToLower(strings.TrimPrefix(name, prefix))
		}
	}
	return out
}

func reverse(names map[int32]string) map[string]int32 {
	out := make(map[string]int32, len(names))
	for number, name := range names {
		out[name] = number
	}
	return out
}

var (
	severities     = lowercaseNames(pdpv1.Severity_name, "SEVERITY_")
	modes          = lowercaseNames(pdpv1.EnforcementMode_name, "ENFORCEMENT_MODE_")
	denials        = lowercaseNames(pdpv1.AuthorizeDenial_name, "AUTHORIZE_DENIAL_")
	approvalStates = lowercaseNames(pdpv1.ApprovalState_name, "APPROVAL_STATE_")
	actions        = reverse(lowercaseNames(pdpv1.Action_name, "ACTION_"))
	contextKinds   = reverse(lowercaseNames(pdpv1.ContextKind_name, "CONTEXT_KIND_"))
)

func nameOr(names map[int32]string, number int32) string {
	if name, ok := names[number]; ok {
		return name
	}
	return "unspecified"
}

func requireID(value, field string) error {
	if strings.TrimSpace(value) == "" {
		return invalidArgument(field, "required, must be a non-empty string")
	}
	return nil
}

// checkAmount refuses what the sidecar would: NaN, infinities, negatives.
func checkAmount(value float64, field string) error {
	if math.IsNaN(value) || math.IsInf(value, 0) || value < 0 {
		return invalidArgument(field, fmt.Sprintf("must be finite and not negative, got %v", value))
	}
	return nil
}

func contextItems(items []ContextItem, field string) ([]*pdpv1.ContextItem, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := make([]*pdpv1.ContextItem, len(items))
	for i, item := range items {
		kind, ok := contextKinds[string(item.Kind)]
		if !ok && item.Kind != "" {
			return nil, invalidArgument(fmt.Sprintf("%s[%d].kind", field, i),
				fmt.Sprintf("unknown context kind %q", item.Kind))
		}
		out[i] = &pdpv1.ContextItem{
			Kind: pdpv1.ContextKind(kind), Source: item.Source, Content: item.Content,
		}
	}
	return out, nil
}

// textField is one string field of a request, for checkUTF8.
type textField struct {
	name  string
	value *string
}

// checkUTF8 refuses text protobuf cannot carry: a string field must be
// valid UTF-8, and gRPC would otherwise fail the call with an opaque
// marshalling error.
func checkUTF8(prefix string, fields ...textField) error {
	for _, field := range fields {
		if field.value != nil && !utf8.ValidString(*field.value) {
			return invalidArgument(prefix+field.name, "is not valid UTF-8")
		}
	}
	return nil
}

// enforceRequest checks r and builds its message; prefix names the request
// in a batch ("requests[3].") so a refused field is named as the sidecar
// would name it.
func enforceRequest(r *EnforceRequest, prefix string) (*pdpv1.EnforceRequest, error) {
	if err := requireID(r.AgentID, prefix+"agent_id"); err != nil {
		return nil, err
	}
	if r.EstimatedCostUSD != nil {
		if err := checkAmount(*r.EstimatedCostUSD, prefix+"estimated_cost_usd"); err != nil {
			return nil, err
		}
	}
	if err := checkUTF8(prefix,
		textField{"agent_id", &r.AgentID}, textField{"input", r.Input}, textField{"output", r.Output},
		textField{"model", &r.Model}, textField{"tool", &r.Tool},
		textField{"request_id", &r.RequestID}, textField{"approval_id", &r.ApprovalID},
	); err != nil {
		return nil, err
	}
	for key, value := range r.Metadata {
		if !utf8.ValidString(key) || !utf8.ValidString(value) {
			return nil, invalidArgument(prefix+"metadata", "keys and values must be valid UTF-8")
		}
	}
	context, err := contextItems(r.Context, prefix+"context")
	if err != nil {
		return nil, err
	}
	return &pdpv1.EnforceRequest{
		AgentId:          r.AgentID,
		Input:            r.Input,
		Output:           r.Output,
		EstimatedCostUsd: r.EstimatedCostUSD,
		Model:            r.Model,
		Tool:             r.Tool,
		Metadata:         r.Metadata,
		RequestId:        r.RequestID,
		ApprovalId:       r.ApprovalID,
		Context:          context,
	}, nil
}

func traceRequest(t *Trace) (*pdpv1.SubmitTraceRequest, error) {
	if err := requireID(t.AgentID, "agent_id"); err != nil {
		return nil, err
	}
	if err := checkAmount(t.CostUSD, "cost_usd"); err != nil {
		return nil, err
	}
	if err := requireID(t.RequestID, "request_id"); err != nil {
		return nil, err
	}
	if t.Duration < 0 {
		return nil, invalidArgument("duration", fmt.Sprintf("must not be negative, got %s", t.Duration))
	}
	context, err := contextItems(t.Context, "context")
	if err != nil {
		return nil, err
	}
	request := &pdpv1.SubmitTraceRequest{
		AgentId:   t.AgentID,
		Input:     t.Input,
		Output:    t.Output,
		CostUsd:   t.CostUSD,
		Model:     t.Model,
		Tool:      t.Tool,
		Metadata:  t.Metadata,
		RequestId: t.RequestID,
		Context:   context,
	}
	if !t.StartedAt.IsZero() {
		request.StartedAt = timestamppb.New(t.StartedAt)
	}
	if t.Duration > 0 {
		request.Duration = durationpb.New(t.Duration)
	}
	return request, nil
}

func timeOf(stamp *timestamppb.Timestamp) time.Time {
	if stamp == nil {
		return time.Time{}
	}
	return stamp.AsTime()
}

func violations(messages []*pdpv1.Violation) []Violation {
	if len(messages) == 0 {
		return nil
	}
	out := make([]Violation, len(messages))
	for i, m := range messages {
		out[i] = Violation{
			PolicyID:        m.GetPolicyId(),
			PolicyName:      m.GetPolicyName(),
			PolicyType:      m.GetPolicyType(),
			Severity:        nameOr(severities, int32(m.GetSeverity())),
			Message:         m.GetMessage(),
			EnforcementMode: EnforcementMode(nameOr(modes, int32(m.GetEnforcementMode()))),
			RetryAfter:      time.Duration(m.GetRetryAfterMs()) * time.Millisecond,
		}
	}
	return out
}

// enforceResult is the result of one Enforce answer, or the error for a
// BLOCK or AGENT_PAUSED decision. A decision this client does not know is
// refused (fail closed) rather than taken for an allow.
func enforceResult(response *pdpv1.EnforceResponse, agentID string) (*EnforceResult, error) {
	fired := violations(response.GetViolations())
	var decision Decision
	switch response.GetDecision() {
	case pdpv1.Decision_DECISION_BLOCK:
		return nil, newPolicyBlocked(fired, response.GetDecisionId(), response.GetSnapshotRevision())
	case pdpv1.Decision_DECISION_AGENT_PAUSED:
		return nil, newAgentPaused(agentID, response.GetPausedReason(), response.GetDecisionId())
	case pdpv1.Decision_DECISION_ALLOW:
		decision = DecisionAllow
	case pdpv1.Decision_DECISION_ALLOW_WITH_WARNINGS:
		decision = DecisionAllowWithWarnings
	case pdpv1.Decision_DECISION_PENDING_APPROVAL:
		decision = DecisionPendingApproval
	default:
		return nil, &PdpError{
			Message: fmt.Sprintf("sidecar answered an unknown decision (%d)", response.GetDecision()),
		}
	}
	var findings []PiiFinding
	for _, f := range response.GetPiiFindings() {
		findings = append(findings, PiiFinding{
			Field: f.GetField(), PiiType: f.GetPiiType(), Start: int(f.GetStart()), End: int(f.GetEnd()),
		})
	}
	return &EnforceResult{
		Decision:         decision,
		Violations:       fired,
		MaskedInput:      response.MaskedInput,
		MaskedOutput:     response.MaskedOutput,
		PiiFindings:      findings,
		DecisionID:       response.GetDecisionId(),
		ApprovalID:       response.GetApprovalId(),
		ApprovalExpires:  timeOf(response.GetApprovalExpiresAt()),
		SnapshotRevision: response.GetSnapshotRevision(),
		RequestID:        response.GetRequestId(),
	}, nil
}

func authorizeResult(response *pdpv1.AuthorizeResponse) *AuthorizeResult {
	result := &AuthorizeResult{
		Allowed:          response.GetAllowed(),
		Reason:           response.GetReason(),
		GrantExpires:     timeOf(response.GetGrantExpiresAt()),
		SnapshotRevision: response.GetSnapshotRevision(),
	}
	if !result.Allowed {
		result.Denial = nameOr(denials, int32(response.GetDenial()))
	}
	return result
}

func agentStatus(state *pdpv1.AgentState) *AgentStatus {
	snapshot := state.GetSnapshot()
	status := &AgentStatus{
		AgentID:          state.GetAgentId(),
		AgentName:        state.GetAgentName(),
		Known:            state.GetKnown(),
		Paused:           state.GetPaused(),
		Reason:           state.GetPausedReason(),
		PausedSince:      timeOf(state.GetPausedSince()),
		SnapshotRevision: snapshot.GetRevision(),
		SnapshotSource:   snapshot.GetSource(),
	}
	for _, b := range state.GetBudgets() {
		status.Budgets = append(status.Budgets, Budget{
			PolicyID:    b.GetPolicyId(),
			PolicyName:  b.GetPolicyName(),
			Period:      b.GetPeriod(),
			LimitUSD:    b.GetLimitUsd(),
			SpentUSD:    b.GetSpentUsd(),
			PeriodStart: timeOf(b.GetPeriodStart()),
		})
	}
	if rejection := snapshot.GetLastRejection(); rejection != nil {
		status.SnapshotRejection = []FieldError{}
		for _, e := range rejection.GetErrors() {
			status.SnapshotRejection = append(status.SnapshotRejection,
				FieldError{Path: e.GetPath(), Message: e.GetMessage()})
		}
	}
	return status
}

func approvalResult(approvalID string, response *pdpv1.AwaitApprovalResponse) *ApprovalResult {
	return &ApprovalResult{
		ApprovalID: approvalID,
		State:      ApprovalState(nameOr(approvalStates, int32(response.GetState()))),
		Reviewer:   response.GetReviewer(),
		Comment:    response.GetComment(),
		ExpiresAt:  timeOf(response.GetExpiresAt()),
		DecidedAt:  timeOf(response.GetDecidedAt()),
	}
}
