package pdp

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// PdpError is the base of every error the client returns. Each other error
// type unwraps to its *PdpError, so errors.As(err, &pdpErr) matches them
// all. Code is the gRPC status code of the answer that caused the error,
// codes.OK when the sidecar answered normally (a block, a pause) or nothing
// was sent.
type PdpError struct {
	Code    codes.Code
	Message string
	cause   error
}

func (e *PdpError) Error() string { return e.Message }

// Unwrap returns the gRPC status error the sidecar answered with, if any.
func (e *PdpError) Unwrap() error { return e.cause }

// PolicyBlockedError is a BLOCK decision: the call must not proceed.
// Violations lists every policy that fired, strictest first (monitor and
// warn ones included); the message names the block-mode ones.
type PolicyBlockedError struct {
	PdpError
	Violations       []Violation
	DecisionID       string
	SnapshotRevision int64
}

func (e *PolicyBlockedError) Unwrap() error { return &e.PdpError }

func newPolicyBlocked(violations []Violation, decisionID string, revision int64) *PolicyBlockedError {
	var names []string
	for _, v := range violations {
		if v.EnforcementMode == ModeBlock {
			names = append(names, v.PolicyName)
		}
	}
	if len(names) == 0 {
		for _, v := range violations {
			names = append(names, v.PolicyName)
		}
	}
	listed := strings.Join(names, ", ")
	if listed == "" {
		listed = "unknown policy"
	}
	return &PolicyBlockedError{
		PdpError:         PdpError{Message: "blocked by policy: " + listed},
		Violations:       violations,
		DecisionID:       decisionID,
		SnapshotRevision: revision,
	}
}

// AgentPausedError is an AGENT_PAUSED decision: the kill switch is on for
// the agent and no policy ran.
type AgentPausedError struct {
	PdpError
	AgentID    string
	Reason     string
	DecisionID string
}

func (e *AgentPausedError) Unwrap() error { return &e.PdpError }

func newAgentPaused(agentID, reason, decisionID string) *AgentPausedError {
	message := fmt.Sprintf("agent %q is paused", agentID)
	if reason != "" {
		message += ": " + reason
	}
	return &AgentPausedError{
		PdpError: PdpError{Message: message}, AgentID: agentID, Reason: reason, DecisionID: decisionID,
	}
}

// SidecarUnavailableError means no answer could be had: the sidecar was
// unreachable or had no active snapshot yet (Code UNAVAILABLE), or it did
// not answer before the deadline (Code DEADLINE_EXCEEDED). The client fails
// closed on it: nothing is allowed unless the client was built WithFailOpen.
type SidecarUnavailableError struct {
	PdpError
	Target string
}

func (e *SidecarUnavailableError) Unwrap() error { return &e.PdpError }

// DeadlineExceededError is the SidecarUnavailableError of a call the
// sidecar did not answer within its deadline (Timeout), e.g. a wedged
// sidecar; errors.As(err, &unavailable) matches it too.
type DeadlineExceededError struct {
	SidecarUnavailableError
	Timeout time.Duration
}

func (e *DeadlineExceededError) Unwrap() error { return &e.SidecarUnavailableError }

// Is makes errors.Is(err, context.DeadlineExceeded) hold, as it does for
// other context-bound Go calls.
func (e *DeadlineExceededError) Is(target error) bool { return target == context.DeadlineExceeded }

// InvalidRequestError is a request that cannot succeed as it is. Field is
// the request field at fault, named as in the proto (e.g. "agent_id",
// "estimated_cost_usd"), empty when no single field is. Local is true when
// the client refused it before sending; Code is then codes.OK (no status).
// The sidecar refuses malformed requests (INVALID_ARGUMENT), oversized ones
// (RESOURCE_EXHAUSTED) and a usage report that reuses a request id for
// other usage (ALREADY_EXISTS).
type InvalidRequestError struct {
	PdpError
	Field string
	Local bool
}

func (e *InvalidRequestError) Unwrap() error { return &e.PdpError }

func invalidArgument(field, reason string) *InvalidRequestError {
	return &InvalidRequestError{
		PdpError: PdpError{Message: field + ": " + reason},
		Field:    field,
		Local:    true,
	}
}

// ApprovalDeniedError is WaitForApproval's answer when the approval was
// denied (State "denied", with the Reviewer and Comment) or expired
// undecided (State "expired").
type ApprovalDeniedError struct {
	PdpError
	ApprovalID string
	State      ApprovalState
	Reviewer   string
	Comment    string
}

func (e *ApprovalDeniedError) Unwrap() error { return &e.PdpError }

// CallerRefusedError is an UNAUTHENTICATED or PERMISSION_DENIED answer: the
// sidecar requires a caller token and got none, or one that cannot act as
// the agent the call names. WithFailOpen never applies; retrying cannot help.
type CallerRefusedError struct {
	PdpError
}

func (e *CallerRefusedError) Unwrap() error { return &e.PdpError }

// UnimplementedError is an UNIMPLEMENTED answer: the sidecar does not serve
// this call (yet, or at its version). Retrying cannot succeed.
type UnimplementedError struct {
	PdpError
	Method string
}

func (e *UnimplementedError) Unwrap() error { return &e.PdpError }

// "agent_id: required", "metadata['env']: too long": a field path, then ": ".
var fieldPrefix = regexp.MustCompile(`^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[[^\]]*\])*)\s*:\s`)

// errorForStatus is the client's error for a call that ended with a non-OK
// gRPC status. timeout is the deadline the call had, for the message.
func errorForStatus(err error, method, target string, timeout time.Duration) error {
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	code, details := st.Code(), st.Message()
	base := PdpError{Code: code, cause: err}
	switch code {
	case codes.DeadlineExceeded:
		base.Message = fmt.Sprintf("sidecar at %s did not answer %s within %s", target, method, timeout)
		return &DeadlineExceededError{SidecarUnavailableError{PdpError: base, Target: target}, timeout}
	case codes.Unavailable:
		base.Message = fmt.Sprintf("sidecar at %s is unavailable: %s", target, orCode(details, code))
		return &SidecarUnavailableError{PdpError: base, Target: target}
	case codes.InvalidArgument, codes.ResourceExhausted, codes.AlreadyExists:
		base.Message = orCode(details, code)
		return &InvalidRequestError{PdpError: base, Field: fieldOf(st)}
	case codes.Unimplemented:
		base.Message = fmt.Sprintf("sidecar at %s does not serve %s: %s", target, method, orCode(details, code))
		return &UnimplementedError{PdpError: base, Method: method}
	case codes.Unauthenticated, codes.PermissionDenied:
		base.Message = orCode(details, code)
		return &CallerRefusedError{PdpError: base}
	}
	base.Message = fmt.Sprintf("sidecar answered %s to %s", code, method)
	if details != "" {
		base.Message += ": " + details
	}
	return &base
}

// fieldOf reads the field from the google.rpc.BadRequest detail the sidecar
// attaches, or from the message's "field: reason" form.
func fieldOf(st *status.Status) string {
	for _, detail := range st.Details() {
		if bad, ok := detail.(*errdetails.BadRequest); ok {
			for _, violation := range bad.GetFieldViolations() {
				if violation.GetField() != "" {
					return violation.GetField()
				}
			}
		}
	}
	if match := fieldPrefix.FindStringSubmatch(st.Message()); match != nil {
		return match[1]
	}
	return ""
}

func orCode(details string, code codes.Code) string {
	if details == "" {
		return code.String()
	}
	return details
}
