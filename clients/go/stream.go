package pdp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
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
type EnforceStream struct {
	stream pdpv1.PolicyDecisionService_EnforceStreamClient
	cancel context.CancelFunc
	target string
	send   sync.Mutex
	// agent ids of the requests sent and not yet answered, by request id,
	// so a paused answer can name its agent.
	agents sync.Map
}

// EnforceStream opens a stream of decisions: Send requests as they arrive,
// Recv their answers, which carry the id given to Send. The stream has no
// deadline of its own; it ends when ctx ends, or after CloseSend once every
// answer was received. It always fails closed.
func (c *Client) EnforceStream(ctx context.Context) (*EnforceStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.stub.EnforceStream(ctx)
	if err != nil {
		cancel()
		return nil, errorForStatus(err, "EnforceStream", c.target, 0)
	}
	return &EnforceStream{stream: stream, cancel: cancel, target: c.target}, nil
}

// Send sends one request under the caller's id, echoed in its answer. A
// request the client can check itself (an empty agent id, a negative cost)
// is refused here with *InvalidRequestError and not sent.
func (s *EnforceStream) Send(id string, request EnforceRequest) error {
	message, err := enforceRequest(&request, "")
	if err != nil {
		return err
	}
	s.agents.Store(id, request.AgentID)
	s.send.Lock()
	defer s.send.Unlock()
	if err := s.stream.Send(&pdpv1.EnforceStreamRequest{Id: id, Request: message}); err != nil {
		return s.failed(err)
	}
	return nil
}

// Recv returns the next answer. At the end of the stream it returns io.EOF
// (after CloseSend, once every answer came) or the error that ended it.
func (s *EnforceStream) Recv() (StreamAnswer, error) {
	response, err := s.stream.Recv()
	if err != nil {
		return StreamAnswer{}, s.failed(err)
	}
	id := response.GetId()
	agentID := ""
	if agent, ok := s.agents.LoadAndDelete(id); ok {
		agentID = agent.(string)
	}
	answer := StreamAnswer{ID: id}
	if refusal := response.GetError(); refusal != nil {
		answer.Err = streamRefusal(refusal, s.target)
	} else {
		answer.Result, answer.Err = enforceResult(response.GetResponse(), agentID)
	}
	return answer, nil
}

// CloseSend says no more requests will be sent; Recv still returns the
// answers to those that were.
func (s *EnforceStream) CloseSend() error {
	s.send.Lock()
	defer s.send.Unlock()
	return s.stream.CloseSend()
}

// Close ends the stream at once; answers not yet received are lost.
func (s *EnforceStream) Close() { s.cancel() }

func (s *EnforceStream) failed(err error) error {
	if errors.Is(err, io.EOF) {
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
		return &InvalidRequestError{PdpError: base, Field: refusal.GetField()}
	case codes.Unavailable:
		return &SidecarUnavailableError{PdpError: base, Target: target}
	case codes.DeadlineExceeded:
		return &DeadlineExceededError{SidecarUnavailableError{PdpError: base, Target: target}, 0}
	}
	base.Message = fmt.Sprintf("sidecar refused the request (%s): %s", refusal.GetCode(), refusal.GetMessage())
	return &base
}
