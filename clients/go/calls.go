package pdp

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/pdp-dev/pdp/clients/go/pdpv1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Enforce asks whether an LLM or tool call may go ahead (Input), or scans a
// model's answer (Output), masking PII where a policy says so. It returns
// the result for ALLOW, ALLOW_WITH_WARNINGS and PENDING_APPROVAL, and
// *PolicyBlockedError for BLOCK, *AgentPausedError for a paused agent.
func (c *Client) Enforce(ctx context.Context, request EnforceRequest) (*EnforceResult, error) {
	message, err := enforceRequest(&request, "")
	if err != nil {
		return nil, err
	}
	response, err := unary(c, ctx, "Enforce", c.stub.Enforce, message)
	if err != nil {
		var unavailable *SidecarUnavailableError
		if c.failOpen && errors.As(err, &unavailable) {
			c.logger.Warn("allowing a call without a policy decision (fail open)",
				"agent_id", request.AgentID, "error", err)
			return &EnforceResult{Decision: DecisionAllow, FailOpen: true}, nil
		}
		return nil, err
	}
	return enforceResult(response, request.AgentID)
}

// BatchOutcome is one answer of EnforceBatch: Result, or Err for a BLOCK
// (*PolicyBlockedError) or a paused agent (*AgentPausedError).
type BatchOutcome struct {
	Result *EnforceResult
	Err    error
}

// EnforceBatch decides many requests in one call; the outcomes come in the
// order of the requests, each its own decision. A malformed request fails
// the whole batch with *InvalidRequestError naming "requests[i].<field>".
// It always fails closed.
func (c *Client) EnforceBatch(ctx context.Context, requests []EnforceRequest) ([]BatchOutcome, error) {
	message := &pdpv1.EnforceBatchRequest{Requests: make([]*pdpv1.EnforceRequest, len(requests))}
	for i := range requests {
		item, err := enforceRequest(&requests[i], fmt.Sprintf("requests[%d].", i))
		if err != nil {
			return nil, err
		}
		message.Requests[i] = item
	}
	response, err := unary(c, ctx, "EnforceBatch", c.stub.EnforceBatch, message)
	if err != nil {
		return nil, err
	}
	answers := response.GetResponses()
	if len(answers) != len(requests) {
		return nil, &PdpError{Message: fmt.Sprintf(
			"sidecar answered %d decisions to a batch of %d", len(answers), len(requests))}
	}
	outcomes := make([]BatchOutcome, len(answers))
	for i, answer := range answers {
		outcomes[i].Result, outcomes[i].Err = enforceResult(answer, requests[i].AgentID)
	}
	return outcomes, nil
}

// Authorize asks whether the source agent may perform action on the target
// agent now. A denial is a result (Allowed false, Denial says why), not an
// error.
func (c *Client) Authorize(ctx context.Context, sourceAgentID, targetAgentID string, action Action) (*AuthorizeResult, error) {
	if err := requireID(sourceAgentID, "source_agent_id"); err != nil {
		return nil, err
	}
	if err := requireID(targetAgentID, "target_agent_id"); err != nil {
		return nil, err
	}
	number, ok := actions[strings.ToLower(string(action))]
	if !ok {
		return nil, invalidArgument("action", fmt.Sprintf(
			"must be one of execute, read, write, delete, invoke, query, subscribe, delegate; got %q", action))
	}
	message := &pdpv1.AuthorizeRequest{
		SourceAgentId: sourceAgentID, TargetAgentId: targetAgentID, Action: pdpv1.Action(number),
	}
	response, err := unary(c, ctx, "Authorize", c.stub.Authorize, message)
	if err != nil {
		return nil, err
	}
	return authorizeResult(response), nil
}

// AgentStatus reports the kill-switch state of an agent, its spend against
// its budgets and the state of the sidecar's snapshot.
func (c *Client) AgentStatus(ctx context.Context, agentID string) (*AgentStatus, error) {
	if err := requireID(agentID, "agent_id"); err != nil {
		return nil, err
	}
	message := &pdpv1.AgentStatusRequest{AgentId: agentID}
	response, err := unary(c, ctx, "AgentStatus", c.stub.AgentStatus, message)
	if err != nil {
		return nil, err
	}
	return agentStatus(response.GetState()), nil
}

// WatchAgentStatus yields the agent's state once on subscription, then on
// every change (a pause, a resume, spend, a new snapshot), until ctx ends
// or the stream fails; then it yields the error once and stops. The watch
// has no deadline of its own: cancel ctx, or break out of the loop, to stop
// it.
//
//	for status, err := range client.WatchAgentStatus(ctx, "my-chatbot") {
//		if err != nil { ... }
//		if status.Paused { ... }
//	}
func (c *Client) WatchAgentStatus(ctx context.Context, agentID string) iter.Seq2[*AgentStatus, error] {
	return func(yield func(*AgentStatus, error) bool) {
		if err := requireID(agentID, "agent_id"); err != nil {
			yield(nil, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.stub.WatchAgentStatus(ctx, &pdpv1.WatchAgentStatusRequest{AgentId: agentID})
		if err != nil {
			yield(nil, errorForStatus(err, "WatchAgentStatus", c.target, 0))
			return
		}
		for {
			response, err := stream.Recv()
			if err != nil {
				yield(nil, errorForStatus(err, "WatchAgentStatus", c.target, 0))
				return
			}
			if !yield(agentStatus(response.GetState()), nil) {
				return
			}
		}
	}
}

// ReportUsage records the actual cost of a call. It is idempotent by
// requestID: a retried report returns Duplicate true and adds nothing; the
// same id with a different agent or amount is refused
// (*InvalidRequestError, Field "request_id").
func (c *Client) ReportUsage(ctx context.Context, agentID string, costUSD float64, requestID string) (*UsageResult, error) {
	if err := requireID(agentID, "agent_id"); err != nil {
		return nil, err
	}
	if err := checkAmount(costUSD, "cost_usd"); err != nil {
		return nil, err
	}
	if err := requireID(requestID, "request_id"); err != nil {
		return nil, err
	}
	message := &pdpv1.ReportUsageRequest{AgentId: agentID, CostUsd: costUSD, RequestId: requestID}
	response, err := unary(c, ctx, "ReportUsage", c.stub.ReportUsage, message)
	if err != nil {
		return nil, err
	}
	return &UsageResult{Duplicate: response.GetDuplicate(), DailySpendUSD: response.GetDailySpendUsd()}, nil
}

// AwaitApproval waits at most wait for the approval an Enforce answer
// carried (EnforceResult.ApprovalID) to be decided, and returns its state,
// which is still "pending" if nobody decided in time. The call's deadline
// is wait plus the client's timeout, unless ctx has one.
func (c *Client) AwaitApproval(ctx context.Context, approvalID string, wait time.Duration) (*ApprovalResult, error) {
	if err := requireID(approvalID, "approval_id"); err != nil {
		return nil, err
	}
	if wait <= 0 {
		return nil, invalidArgument("timeout", fmt.Sprintf("must be greater than 0, got %s", wait))
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait+c.timeout)
		defer cancel()
	}
	message := &pdpv1.AwaitApprovalRequest{ApprovalId: approvalID, Timeout: durationpb.New(wait)}
	response, err := unary(c, ctx, "AwaitApproval", c.stub.AwaitApproval, message)
	if err != nil {
		return nil, err
	}
	return approvalResult(approvalID, response), nil
}

// approvalPoll is how long one AwaitApproval of WaitForApproval waits; the
// loop calls again until the approval is decided or ctx ends.
const approvalPoll = 30 * time.Second

// WaitForApproval waits until the approval is decided: it returns the
// result when approved, *ApprovalDeniedError when denied or expired, and
// *DeadlineExceededError when ctx's deadline passes first.
// Give ctx a deadline: approvals can take a reviewer minutes.
func (c *Client) WaitForApproval(ctx context.Context, approvalID string) (*ApprovalResult, error) {
	for {
		wait := approvalPoll
		if deadline, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(deadline))
			if wait <= 0 {
				return nil, errorForStatus(context.DeadlineExceeded, "AwaitApproval", c.target, 0)
			}
		}
		result, err := c.AwaitApproval(ctx, approvalID, wait)
		if err != nil {
			return nil, err
		}
		switch result.State {
		case ApprovalApproved:
			return result, nil
		case ApprovalDenied, ApprovalExpired:
			message := fmt.Sprintf("approval %s was %s", approvalID, result.State)
			if result.Reviewer != "" {
				message += " by " + result.Reviewer
			}
			if result.Comment != "" {
				message += ": " + result.Comment
			}
			return nil, &ApprovalDeniedError{
				PdpError:   PdpError{Message: message},
				ApprovalID: approvalID, State: result.State, Reviewer: result.Reviewer, Comment: result.Comment,
			}
		}
	}
}

// SubmitTrace records a finished call for evaluation after the fact, in
// monitor fashion: violations become incidents, the cost counts as spend.
// A paused agent's trace is refused (*PdpError, Code FAILED_PRECONDITION).
func (c *Client) SubmitTrace(ctx context.Context, trace Trace) (*TraceResult, error) {
	message, err := traceRequest(&trace)
	if err != nil {
		return nil, err
	}
	response, err := unary(c, ctx, "SubmitTrace", c.stub.SubmitTrace, message)
	if err != nil {
		return nil, err
	}
	return &TraceResult{
		TraceID:    response.GetTraceId(),
		Violations: violations(response.GetViolations()),
		Anomaly:    response.GetAnomaly(),
	}, nil
}
