package pdp

import "time"

// Decision is the outcome of an Enforce call that lets the call go ahead, or
// holds it for approval. BLOCK and AGENT_PAUSED are returned as
// *PolicyBlockedError and *AgentPausedError instead.
type Decision string

const (
	DecisionAllow             Decision = "ALLOW"
	DecisionAllowWithWarnings Decision = "ALLOW_WITH_WARNINGS"
	DecisionPendingApproval   Decision = "PENDING_APPROVAL"
)

// EnforcementMode is what a policy does when it fires, lowercase as in the
// snapshot: monitor, warn, require_approval, block.
type EnforcementMode string

const (
	ModeMonitor         EnforcementMode = "monitor"
	ModeWarn            EnforcementMode = "warn"
	ModeRequireApproval EnforcementMode = "require_approval"
	ModeBlock           EnforcementMode = "block"
)

// Action is what one agent may be granted on another.
type Action string

const (
	ActionExecute   Action = "execute"
	ActionRead      Action = "read"
	ActionWrite     Action = "write"
	ActionDelete    Action = "delete"
	ActionInvoke    Action = "invoke"
	ActionQuery     Action = "query"
	ActionSubscribe Action = "subscribe"
	ActionDelegate  Action = "delegate"
)

// ContextKind says where a ContextItem came from.
type ContextKind string

const (
	ContextDocument   ContextKind = "document"
	ContextToolResult ContextKind = "tool_result"
	ContextEmail      ContextKind = "email"
	ContextWebPage    ContextKind = "web_page"
	ContextCode       ContextKind = "code"
)

// ApprovalState is the state of a require_approval hold.
type ApprovalState string

const (
	ApprovalPending  ApprovalState = "pending"
	ApprovalApproved ApprovalState = "approved"
	ApprovalDenied   ApprovalState = "denied"
	ApprovalExpired  ApprovalState = "expired"
)

// Ptr returns a pointer to v, for the optional fields of a request:
// EnforceRequest{Input: pdp.Ptr("hello")}.
func Ptr[T any](v T) *T { return &v }

// EnforceRequest is one call to decide. AgentID is required (an id or a
// name from the snapshot). Input, Output and EstimatedCostUSD are optional:
// nil is absent, which differs from empty. EstimatedCostUSD must be finite
// and not negative.
type EnforceRequest struct {
	AgentID          string
	Input            *string
	Output           *string
	EstimatedCostUSD *float64
	Model            string
	Tool             string
	Metadata         map[string]string
	// RequestID is echoed into the decision log, and is the key ReportUsage
	// settles this call's reserved cost with.
	RequestID string
	// ApprovalID is set when retrying a call a reviewer approved.
	ApprovalID string
	// Context is content the agent pulled in, scanned for indirect injection.
	Context []ContextItem
}

// ContextItem is content an agent pulled in: a retrieved document, a tool
// result, an email, a web page, code.
type ContextItem struct {
	Kind    ContextKind
	Source  string
	Content string
}

// Violation is one policy that fired. Severity is low, medium, high or
// critical. Message never contains the PII values found. RetryAfter is set
// by rate_limit policies.
type Violation struct {
	PolicyID        string
	PolicyName      string
	PolicyType      string
	Severity        string
	Message         string
	EnforcementMode EnforcementMode
	RetryAfter      time.Duration
}

// PiiFinding is one span of PII. Field is "input" or "output"; Start and End
// are offsets in Unicode code points (runes, not bytes) into the original
// text, End exclusive.
type PiiFinding struct {
	Field   string
	PiiType string
	Start   int
	End     int
}

// EnforceResult is a decision that lets the call proceed, or holds it for
// approval. MaskedInput / MaskedOutput are nil unless a policy masked the
// text. FailOpen is true only when the sidecar could not be reached and the
// client was built WithFailOpen: then no policy ran and the decision is
// ALLOW.
type EnforceResult struct {
	Decision         Decision
	Violations       []Violation
	MaskedInput      *string
	MaskedOutput     *string
	PiiFindings      []PiiFinding
	DecisionID       string
	ApprovalID       string
	ApprovalExpires  time.Time // zero unless PENDING_APPROVAL
	SnapshotRevision int64
	RequestID        string
	FailOpen         bool
}

// Warnings returns the violations of warn-mode policies: the call may go
// ahead, but someone should hear about it.
func (r *EnforceResult) Warnings() []Violation {
	var warnings []Violation
	for _, v := range r.Violations {
		if v.EnforcementMode == ModeWarn {
			warnings = append(warnings, v)
		}
	}
	return warnings
}

// AuthorizeResult says whether a source agent may act on a target agent now.
// Denial is empty when allowed, else one of no_grant, grant_expired,
// action_not_granted, source_paused, target_paused, unknown_agent.
// GrantExpires is the expiry of the grant that allowed the call, zero when
// it has none.
type AuthorizeResult struct {
	Allowed          bool
	Reason           string
	Denial           string
	GrantExpires     time.Time
	SnapshotRevision int64
}

// Budget is spend against one budget of one policy; Period is "daily"
// (cost_limit) or "monthly" (budget_cap).
type Budget struct {
	PolicyID    string
	PolicyName  string
	Period      string
	LimitUSD    float64
	SpentUSD    float64
	PeriodStart time.Time
}

// FieldError names a field of a rejected snapshot and what is wrong with it.
type FieldError struct {
	Path    string
	Message string
}

// AgentStatus is the kill-switch state of an agent, its spend and the
// sidecar's snapshot. Known is false when the snapshot does not list the
// agent (policies for all agents still apply to it). SnapshotRejection
// lists the errors of the last snapshot the sidecar refused while it kept
// serving the active one; nil when none was.
type AgentStatus struct {
	AgentID           string
	AgentName         string
	Known             bool
	Paused            bool
	Reason            string
	PausedSince       time.Time
	Budgets           []Budget
	SnapshotRevision  int64
	SnapshotSource    string
	SnapshotRejection []FieldError
}

// UsageResult: Duplicate is true when the request id was already recorded
// (nothing was added); DailySpendUSD is the agent's spend today (UTC).
type UsageResult struct {
	Duplicate     bool
	DailySpendUSD float64
}

// ApprovalResult is the state of an approval after AwaitApproval.
// Reviewer and Comment are set once decided; ExpiresAt is when a pending
// approval expires (and is then denied).
type ApprovalResult struct {
	ApprovalID string
	State      ApprovalState
	Reviewer   string
	Comment    string
	ExpiresAt  time.Time
	DecidedAt  time.Time
}

// Trace is a finished call, submitted for evaluation after the fact.
// AgentID and RequestID (the idempotency key) are required; CostUSD must be
// finite and not negative.
type Trace struct {
	AgentID   string
	Input     *string
	Output    *string
	CostUSD   float64
	Model     string
	Tool      string
	Metadata  map[string]string
	RequestID string
	StartedAt time.Time
	Duration  time.Duration
	Context   []ContextItem
}

// TraceResult lists the policies that fired on a trace (recorded as
// incidents); Anomaly is true when a block-mode policy fired or the cost is
// above the agent's per-execution limit.
type TraceResult struct {
	TraceID    string
	Violations []Violation
	Anomaly    bool
}
