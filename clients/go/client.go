package pdp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/pdp-dev/pdp/clients/go/pdpv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// DefaultTimeout is the deadline of a call whose context has none. The
// sidecar runs next to the agent, so a decision normally takes well under a
// millisecond; a second leaves room for a cold start without letting a
// wedged sidecar hold the agent for long.
const DefaultTimeout = time.Second

// Client is a client of one pdp sidecar. It is safe for concurrent use; make
// one per process and Close it when done.
type Client struct {
	conn     *grpc.ClientConn
	stub     pdpv1.PolicyDecisionServiceClient
	target   string
	timeout  time.Duration
	failOpen bool
	logger   *slog.Logger
}

type settings struct {
	timeout     time.Duration
	failOpen    bool
	logger      *slog.Logger
	dialOptions []grpc.DialOption
	callerToken string
}

// CallerTokenMetadata is the metadata key of the caller token.
const CallerTokenMetadata = "x-pdp-caller-token"

// WithCallerToken sends the agent's caller token with every call, for a
// sidecar run with --require-caller-token (default: $PDP_CALLER_TOKEN). A
// token that cannot act as the agent a call names is refused with
// *CallerRefusedError.
func WithCallerToken(token string) Option {
	return func(s *settings) error {
		if token == "" || strings.TrimSpace(token) != token || strings.ContainsFunc(token, func(r rune) bool {
			return r < 0x21 || r > 0x7e
		}) {
			return errors.New("pdp: the caller token must be printable ASCII without white space")
		}
		s.callerToken = token
		return nil
	}
}

// callerToken puts the token on every call; it needs no transport security
// (the sidecar is on loopback or a Unix socket unless TLS is dialled).
type callerToken string

func (t callerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{CallerTokenMetadata: string(t)}, nil
}

func (callerToken) RequireTransportSecurity() bool { return false }

// Option configures a Client.
type Option func(*settings) error

// WithTimeout sets the deadline of calls whose context has none (default
// DefaultTimeout). It must be greater than zero.
func WithTimeout(timeout time.Duration) Option {
	return func(s *settings) error {
		if timeout <= 0 {
			return fmt.Errorf("pdp: timeout must be greater than 0, got %s", timeout)
		}
		s.timeout = timeout
		return nil
	}
}

// WithFailOpen makes Enforce allow a call, with EnforceResult.FailOpen set
// and a warning logged, when the sidecar cannot be reached or misses the
// deadline. Without it the client fails closed: Enforce returns
// *SidecarUnavailableError. No other call fails open.
func WithFailOpen() Option {
	return func(s *settings) error {
		s.failOpen = true
		return nil
	}
}

// WithLogger sets where the fail-open warning goes (default slog.Default()).
func WithLogger(logger *slog.Logger) Option {
	return func(s *settings) error {
		s.logger = logger
		return nil
	}
}

// WithDialOptions adds gRPC dial options, e.g. transport credentials for a
// sidecar that is not on loopback, after the client's own.
func WithDialOptions(options ...grpc.DialOption) Option {
	return func(s *settings) error {
		s.dialOptions = append(s.dialOptions, options...)
		return nil
	}
}

// NewClient makes a client of the sidecar at target: "host:port", or
// "unix:/path" for a Unix socket, and starts connecting in the background so
// the first call does not pay for the connection. A call to a sidecar that
// is down fails at once with *SidecarUnavailableError rather than waiting
// for it to come up.
func NewClient(target string, options ...Option) (*Client, error) {
	if strings.TrimSpace(target) == "" {
		return nil, errors.New("pdp: target must be 'host:port' or 'unix:/path', got an empty string")
	}
	s := settings{timeout: DefaultTimeout}
	if env := os.Getenv("PDP_CALLER_TOKEN"); env != "" {
		if err := WithCallerToken(env)(&s); err != nil {
			return nil, fmt.Errorf("%w (from PDP_CALLER_TOKEN)", err)
		}
	}
	for _, option := range options {
		if err := option(&s); err != nil {
			return nil, err
		}
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Ping only while calls are in flight, and rarely: servers refuse
		// clients that ping idle connections too often.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: time.Minute, Timeout: 20 * time.Second, PermitWithoutStream: false,
		}),
		// Reconnecting to a local sidecar is cheap; a short backoff means a
		// restarted sidecar is used again within about a second.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second,
			},
			MinConnectTimeout: time.Second,
		}),
	}
	if s.callerToken != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(callerToken(s.callerToken)))
	}
	conn, err := grpc.NewClient(target, append(dial, s.dialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("pdp: cannot use target %q: %w", target, err)
	}
	conn.Connect()
	return &Client{
		conn:     conn,
		stub:     pdpv1.NewPolicyDecisionServiceClient(conn),
		target:   target,
		timeout:  s.timeout,
		failOpen: s.failOpen,
		logger:   s.logger,
	}, nil
}

// Target is the sidecar address the client was made with.
func (c *Client) Target() string { return c.target }

// Conn is the client's gRPC connection, for pdpv1 calls it does not wrap.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection; calls in flight are cancelled. Calls after
// Close fail with *PdpError.
func (c *Client) Close() error { return c.conn.Close() }

// withDeadline gives ctx the client's default deadline when it has none.
func (c *Client) withDeadline(ctx context.Context) (context.Context, context.CancelFunc, time.Duration) {
	if deadline, ok := ctx.Deadline(); ok {
		return ctx, func() {}, time.Until(deadline).Round(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return ctx, cancel, c.timeout
}

// unary sends one request with the call's deadline and maps a failure to
// the client's error.
func unary[Req, Resp any](
	c *Client, ctx context.Context, method string,
	send func(context.Context, Req, ...grpc.CallOption) (Resp, error), request Req,
) (Resp, error) {
	ctx, cancel, timeout := c.withDeadline(ctx)
	defer cancel()
	response, err := send(ctx, request)
	if err != nil {
		var zero Resp
		return zero, errorForStatus(err, method, c.target, timeout)
	}
	return response, nil
}
