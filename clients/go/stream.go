package pdp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"

	"github.com/pdp-dev/pdp/clients/go/pdpv1"
)

// StreamAnswer is one answer of an EnforceStream: the ID of the request it
// answers, and its Result, or Err: *PolicyBlockedError, *AgentPausedError,
// or *InvalidRequestError / *SidecarUnavailableError / *PdpError for a
// request the sidecar refused without ending the stream.
type StreamAnswer struct {
	ID     string
	Result *EnforceResult
	Err    error
}

// EnforceStream is a long-lived stream of decisions, opened by
// Client.EnforceStream. Send and Recv may be called from different
// goroutines; Send is safe for concurrent use, Recv is not.
//
// Send queues the request for the stream's one writer goroutine, which
// sends every request queued when it runs in one message (the sidecar
// answers them in one), never waiting for more; a lone request goes alone.
// A busy stream so pays gRPC's per-message cost once per pack rather than
// once per request.
type EnforceStream struct {
	stream pdpv1.PolicyDecisionService_EnforceStreamClient
	cancel context.CancelFunc
	target string
	writer *packWriter
	// agent ids of the requests sent and not yet answered, by request id,
	// so a paused answer can name its agent.
	agents sync.Map
	// the answers of a packed message not yet returned by Recv.
	unread []*pdpv1.EnforceStreamAnswer
}

// EnforceStream opens a stream of decisions: Send requests as they arrive,
// Recv their answers, which carry the id given to Send. The stream has no
// deadline of its own; it ends when ctx ends, or after CloseSend once every
// answer was received, or when Recv returns an error; Close or one of those
// frees its writer goroutine. It always fails closed.
func (c *Client) EnforceStream(ctx context.Context) (*EnforceStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.stub.EnforceStream(ctx)
	if err != nil {
		cancel()
		return nil, errorForStatus(err, "EnforceStream", c.target, 0)
	}
	return &EnforceStream{stream: stream, cancel: cancel, target: c.target, writer: startPackWriter(ctx, stream)}, nil
}

// Send queues one request under the caller's id, echoed in its answer, and
// returns; it waits only while many requests are queued and not yet
// written. A request the client can check itself (an empty agent id, a
// negative cost) is refused here with *InvalidRequestError and not sent.
// Once the stream has failed, Send returns io.EOF (Recv returns the error
// that ended it) or the write's error; after CloseSend, a *PdpError.
func (s *EnforceStream) Send(id string, request EnforceRequest) error {
	message, err := enforceRequest(&request, "")
	if err != nil {
		return err
	}
	s.agents.Store(id, request.AgentID)
	if err := s.writer.add(&pdpv1.EnforceStreamItem{Id: id, Request: message}); err != nil {
		s.agents.Delete(id)
		return s.failed(err)
	}
	return nil
}

// streamAnswer is what a lone answer and a packed one have in common.
type streamAnswer interface {
	GetId() string
	GetResponse() *pdpv1.EnforceResponse
	GetError() *pdpv1.RequestError
}

// Recv returns the next answer, one per request whether the sidecar packed
// answers or not. At the end of the stream it returns io.EOF (after
// CloseSend, once every answer came) or the error that ended it.
func (s *EnforceStream) Recv() (StreamAnswer, error) {
	var next streamAnswer
	if len(s.unread) > 0 {
		next, s.unread = s.unread[0], s.unread[1:]
	} else {
		response, err := s.stream.Recv()
		if err != nil {
			s.cancel() // the stream is over: free the writer
			return StreamAnswer{}, s.failed(err)
		}
		next = response
		if answers := response.GetAnswers(); len(answers) > 0 {
			next, s.unread = answers[0], answers[1:]
		}
	}
	id := next.GetId()
	agentID := ""
	if agent, ok := s.agents.LoadAndDelete(id); ok {
		agentID = agent.(string)
	}
	answer := StreamAnswer{ID: id}
	if refusal := next.GetError(); refusal != nil {
		answer.Err = streamRefusal(refusal, s.target)
	} else {
		answer.Result, answer.Err = enforceResult(next.GetResponse(), agentID)
	}
	return answer, nil
}

// CloseSend says no more requests will be sent, once those queued are
// written; Recv still returns the answers to all that were sent.
func (s *EnforceStream) CloseSend() error {
	if err := s.writer.closeSend(); err != nil {
		return s.failed(err)
	}
	return nil
}

// Close ends the stream at once; answers not yet received are lost.
func (s *EnforceStream) Close() { s.cancel() }

func (s *EnforceStream) failed(err error) error {
	var local *PdpError
	if errors.Is(err, io.EOF) || errors.As(err, &local) {
		return err
	}
	return errorForStatus(err, "EnforceStream", s.target, 0)
}

// streamRefusal is the error for a request refused inside the stream, which
// carries its status code by name.
func streamRefusal(refusal *pdpv1.RequestError, target string) error {
	var code codes.Code
	if code.UnmarshalJSON([]byte(strconv.Quote(refusal.GetCode()))) != nil {
		code = codes.Unknown
	}
	base := PdpError{Code: code, Message: refusal.GetMessage()}
	switch code {
	case codes.InvalidArgument, codes.ResourceExhausted, codes.AlreadyExists:
		// Named as Enforce names it: "model", not "request.model".
		return &InvalidRequestError{PdpError: base, Field: strings.TrimPrefix(refusal.GetField(), "request.")}
	case codes.Unavailable:
		return &SidecarUnavailableError{PdpError: base, Target: target}
	case codes.DeadlineExceeded:
		return &DeadlineExceededError{SidecarUnavailableError{PdpError: base, Target: target}, 0}
	}
	base.Message = fmt.Sprintf("sidecar refused the request (%s): %s", refusal.GetCode(), refusal.GetMessage())
	return &base
}
