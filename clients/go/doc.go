// Package pdp is the Go client of the pdp sidecar, a policy decision point
// for AI agents. An agent asks the sidecar, before it acts, whether an LLM
// call, a tool call or a call to another agent may go ahead:
//
//	client, err := pdp.NewClient("127.0.0.1:50051") // or "unix:/run/pdp/pdp.sock"
//	if err != nil { ... }
//	defer client.Close()
//
//	result, err := client.Enforce(ctx, pdp.EnforceRequest{AgentID: "my-chatbot", Input: pdp.Ptr(prompt)})
//	var blocked *pdp.PolicyBlockedError
//	var paused *pdp.AgentPausedError
//	switch {
//	case errors.As(err, &blocked): // blocked.Violations says which policies fired
//	case errors.As(err, &paused):  // paused.Reason
//	case err != nil:               // no decision: fail closed
//	default:                       // result.Decision is ALLOW, ALLOW_WITH_WARNINGS or PENDING_APPROVAL
//	}
//
// Every call has a deadline: the context's, or the client's default timeout
// (one second) when the context has none. Calls fail closed: an unreachable
// sidecar is a *SidecarUnavailableError, never an allow, unless the client
// was built WithFailOpen.
//
// Errors, all usable with errors.As; each also matches *PdpError, the base,
// whose Code is the gRPC status code of the answer that caused it:
//
//	*PdpError                  base
//	*PolicyBlockedError        a block-mode policy fired (Violations)
//	*AgentPausedError          the agent is paused by the kill switch
//	*SidecarUnavailableError   unreachable or no snapshot yet (UNAVAILABLE)
//	*DeadlineExceededError     a SidecarUnavailableError: no answer within the
//	                           deadline; errors.Is(err, context.DeadlineExceeded)
//	*InvalidRequestError       the request was refused (Field names the field),
//	                           by the client before sending (Local) or by the
//	                           sidecar (INVALID_ARGUMENT, RESOURCE_EXHAUSTED,
//	                           ALREADY_EXISTS)
//	*ApprovalDeniedError       WaitForApproval: denied or expired
//	*UnimplementedError        the sidecar does not serve this call yet
//	                           (UNIMPLEMENTED)
//	*WebhookVerificationError  VerifyWebhook: the delivery is not authentic
//
// The generated stubs are in the pdpv1 package, for calls this client does
// not wrap.
package pdp
