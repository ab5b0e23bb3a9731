package pdp

import (
	"context"
	"io"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/pdp-dev/pdp/clients/go/pdpv1"
)

// A pack's bounds, the other clients' too: well under the sidecar's (that of
// an EnforceBatch), and in bytes under the slack any sidecar's message limit
// leaves above its largest request, so a pack is never refused where its
// requests alone would not be. A request over the byte bound goes alone.
const (
	maxPack      = 100
	maxPackBytes = 60 * 1024
	// Requests queued and not yet written, beyond which Send waits, as a
	// write waits for a sidecar that reads slowly.
	maxWaiting = 10 * maxPack
)

// errSendAfterCloseSend is Send's error once CloseSend was called.
var errSendAfterCloseSend = &PdpError{Message: "pdp: Send after CloseSend on an EnforceStream"}

type queued struct {
	item *pdpv1.EnforceStreamItem
	size int
}

// packWriter is an EnforceStream's one writer: a goroutine that sends the
// requests already queued when it runs in one message, never waiting for
// more, so a busy stream pays gRPC's per-message cost once per pack. It
// ends after CloseSend (once all queued was written), when a write fails,
// or when the stream's context ends.
type packWriter struct {
	stream pdpv1.PolicyDecisionService_EnforceStreamClient
	wake   chan struct{} // a request or CloseSend is queued
	done   chan struct{} // closed when the goroutine returns

	mu      sync.Mutex
	room    sync.Cond // the writer took requests, or stopped
	queue   []queued
	closing bool // CloseSend was called; once the queue is written, close
	stopped bool
	err     error // why it stopped: nil after CloseSend went through
}

func startPackWriter(ctx context.Context, stream pdpv1.PolicyDecisionService_EnforceStreamClient) *packWriter {
	w := &packWriter{stream: stream, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.room.L = &w.mu
	go w.run(ctx)
	return w
}

// add queues one request for the writer; it waits while maxWaiting are
// queued. The error is the write's that ended the stream (io.EOF when the
// stream ended otherwise: Recv says why), or errSendAfterCloseSend.
func (w *packWriter) add(item *pdpv1.EnforceStreamItem) error {
	size := proto.Size(item)
	w.mu.Lock()
	for len(w.queue) >= maxWaiting && !w.stopped && !w.closing {
		w.room.Wait()
	}
	switch {
	case w.closing || (w.stopped && w.err == nil):
		w.mu.Unlock()
		return errSendAfterCloseSend
	case w.stopped:
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.queue = append(w.queue, queued{item, size})
	w.mu.Unlock()
	w.signal()
	return nil
}

// closeSend half-closes the stream once every queued request was written.
func (w *packWriter) closeSend() error {
	w.mu.Lock()
	already := w.closing
	w.closing = true
	w.mu.Unlock()
	if !already {
		w.signal()
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *packWriter) signal() {
	select {
	case w.wake <- struct{}{}:
	default: // already woken
	}
}

func (w *packWriter) run(ctx context.Context) {
	defer close(w.done)
	for {
		items, closing := w.take()
		switch {
		case len(items) > 0:
			if err := w.stream.Send(packed(items)); err != nil {
				w.stop(err)
				return
			}
		case closing:
			w.stop(w.stream.CloseSend())
			return
		default:
			select {
			case <-w.wake:
			case <-ctx.Done():
				w.stop(io.EOF) // Recv returns the stream's end
				return
			}
		}
	}
}

// take removes the requests that go in the next message: those queued, in
// order, within a pack's bounds. closing: nothing is queued and CloseSend
// was called.
func (w *packWriter) take() (items []*pdpv1.EnforceStreamItem, closing bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	bytes := 0
	for _, next := range w.queue {
		if len(items) == maxPack || (len(items) > 0 && bytes+next.size > maxPackBytes) {
			break
		}
		items = append(items, next.item)
		bytes += next.size
	}
	if len(items) > 0 {
		clear(w.queue[:len(items)]) // the written requests are not kept alive
		w.queue = w.queue[len(items):]
		w.room.Broadcast()
	}
	return items, w.closing && len(w.queue) == 0
}

func (w *packWriter) stop(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped, w.err, w.queue = true, err, nil
	w.room.Broadcast()
}

// packed is one stream message: a lone request as a sidecar that does not
// know packing reads it, several in items.
func packed(items []*pdpv1.EnforceStreamItem) *pdpv1.EnforceStreamRequest {
	if len(items) == 1 {
		return &pdpv1.EnforceStreamRequest{Id: items[0].GetId(), Request: items[0].GetRequest()}
	}
	return &pdpv1.EnforceStreamRequest{Items: items}
}
