package tokenwire

import (
	"context"
	"errors"
	"io"
	"iter"
	"sync"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrSessionClosed is returned by Start after CloseSend, or once the
// session's stream has ended.
var ErrSessionClosed = errors.New("tokenwire: session closed")

// Session multiplexes many generations on one bidirectional Session stream.
// Its methods are safe for concurrent use. A background goroutine reads the
// stream and routes each event to its Generation by request id; a slow
// reader of one generation never holds up the others.
type Session struct {
	stream grpc.BidiStreamingClient[pb.SessionRequest, pb.SessionResponse]
	client *Client
	ctx    context.Context // the stream's; Abort calls after CloseSend run in it
	cancel context.CancelFunc
	done   chan struct{}
	policy RetryPolicy // for generations that fail before they start

	sendMu sync.Mutex // serializes Send and CloseSend

	mu         sync.Mutex
	gens       map[string]*Generation // in flight; nil once the stream ended
	closedSend bool
	err        error // how the stream ended (nil: OK); valid once done is closed
}

// OpenSession opens a Session stream. ctx bounds the whole stream: cancelling
// it (or its deadline passing) cancels every generation on it. Call CloseSend
// then Wait to end it gracefully, or Close to cancel it. A generation whose
// error event has a retryable code and arrives before any other event of it
// is started again on the stream per the client's [RetryPolicy] (or the one
// among opts, [WithCallRetryPolicy]), unless it was cancelled or the session
// half-closed meanwhile.
func (c *Client) OpenSession(ctx context.Context, opts ...grpc.CallOption) (*Session, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.gen.Session(ctx, opts...)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &Session{
		stream: stream,
		client: c,
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		policy: c.retryPolicy(opts),
		gens:   make(map[string]*Generation),
	}
	go s.receive()
	return s, nil
}

// Start sends a generation request on the stream. req.RequestId is required
// and must not name a generation still in flight on this session.
func (s *Session) Start(req *pb.GenerateRequest) (*Generation, error) {
	id := req.GetRequestId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "tokenwire: a session request needs a request_id")
	}
	n := sampleCount(req)
	g := &Generation{id: id, session: s, req: req, notify: make(chan struct{}, 1), samples: n, finishes: newFinishes(n), attempts: 1}
	s.mu.Lock()
	switch {
	case s.gens == nil || s.closedSend:
		s.mu.Unlock()
		return nil, ErrSessionClosed
	case s.gens[id] != nil:
		s.mu.Unlock()
		// The server would answer ALREADY_EXISTS under the same id, which
		// this client could not tell apart from the running generation's
		// events: refuse it here instead.
		return nil, status.Errorf(codes.AlreadyExists, "tokenwire: request_id %q is already in flight on this session", id)
	}
	s.gens[id] = g
	s.mu.Unlock()

	if err := s.send(&pb.SessionRequest{Action: &pb.SessionRequest_Start{Start: req}}); err != nil {
		s.mu.Lock()
		if s.gens != nil && s.gens[id] == g {
			delete(s.gens, id)
		}
		s.mu.Unlock()
		return nil, err
	}
	return g, nil
}

// Cancel cancels the generation with the given id on this session; it then
// ends with FINISH_REASON_CANCELLED. Unknown and finished ids are ignored by
// the server. After CloseSend the stream can carry no more requests, so
// Cancel then calls the Abort RPC with the request id instead (bounded by the
// session's context).
func (s *Session) Cancel(requestID string) error {
	req := &pb.SessionRequest{Action: &pb.SessionRequest_Cancel{Cancel: &pb.SessionCancel{RequestId: requestID}}}
	s.sendMu.Lock()
	s.mu.Lock()
	if g := s.gens[requestID]; g != nil {
		g.cancelRequested = true // not to be started again
	}
	closedSend, ended := s.closedSend, s.gens == nil
	s.mu.Unlock()
	if !closedSend || ended {
		defer s.sendMu.Unlock()
		return s.sendLocked(req)
	}
	s.sendMu.Unlock()
	_, err := s.client.Abort(s.ctx, requestID)
	if err != nil {
		select {
		case <-s.done: // the stream ended meanwhile, and every generation on it
			return nil
		default:
		}
	}
	return err
}

// CloseSend half-closes the stream: no more requests. Generations in flight
// run to completion, then the server ends the stream (see Wait).
func (s *Session) CloseSend() error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	already := s.closedSend
	s.closedSend = true
	s.mu.Unlock()
	if already {
		return nil
	}
	return s.stream.CloseSend()
}

// Wait blocks until the stream has ended and returns its error: nil when the
// server ended it with OK.
func (s *Session) Wait() error {
	<-s.done
	return s.err
}

// Done is closed once the stream has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Close cancels the stream, and with it every generation still in flight on
// it, and waits for the receiving goroutine to stop.
func (s *Session) Close() {
	s.cancel()
	<-s.done
}

func (s *Session) send(req *pb.SessionRequest) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.sendLocked(req)
}

// sendLocked sends req; s.sendMu is held.
func (s *Session) sendLocked(req *pb.SessionRequest) error {
	err := s.stream.Send(req)
	if errors.Is(err, io.EOF) {
		// The stream is over; its status comes from the receiving side.
		<-s.done
		if s.err != nil {
			return s.err
		}
		return ErrSessionClosed
	}
	return err
}

func (s *Session) receive() {
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			s.end(err)
			return
		}
		id := resp.GetRequestId()
		it := item{ev: Event{
			RequestID: id,
			Started:   resp.GetStarted(),
			Delta:     resp.GetDelta(),
			Finished:  resp.GetFinished(),
		}}
		if st := resp.GetError(); st != nil {
			it.err = status.ErrorProto(st)
		}
		s.mu.Lock()
		g := s.gens[id]
		retry := false
		if g != nil {
			if it.err == nil {
				g.started = true
			} else if !g.started && !g.cancelRequested && g.attempts < s.policy.MaxAttempts && s.policy.retryable(status.Code(it.err)) {
				// Failed before it started: start it again after a wait,
				// keeping its id reserved meanwhile.
				retry = true
				go s.restart(g, g.attempts, it.err)
			}
			// A generation of n samples ends with its n-th Finished event.
			it.last = it.ev.Finished != nil && g.finishes.add(it.ev.Finished)
			if !retry && (it.err != nil || it.last) {
				delete(s.gens, id)
			}
		}
		s.mu.Unlock()
		if retry {
			continue
		}
		if g != nil {
			g.push(it)
		}
	}
}

// restart waits per the policy after attempt number attempt of g failed with
// err, then sends g's request again; when it may not (the policy gives up,
// the wait would pass the deadline, g was cancelled, the session half-closed
// or ended), g fails with err.
func (s *Session) restart(g *Generation, attempt int, err error) {
	waitErr := s.policy.wait(s.ctx, attempt, err)
	s.sendMu.Lock()
	s.mu.Lock()
	live := s.gens != nil && s.gens[g.id] == g
	resend := waitErr == nil && live && !s.closedSend && !g.cancelRequested
	if resend {
		g.attempts++
	}
	s.mu.Unlock()
	if resend {
		sendErr := s.sendLocked(&pb.SessionRequest{Action: &pb.SessionRequest_Start{Start: g.req}})
		s.sendMu.Unlock()
		if sendErr == nil {
			return
		}
		err = sendErr
	} else {
		s.sendMu.Unlock()
		if waitErr != nil {
			err = waitErr
		}
	}
	if !live {
		return // the stream ended, and told g
	}
	s.mu.Lock()
	if s.gens != nil && s.gens[g.id] == g {
		delete(s.gens, g.id)
	}
	s.mu.Unlock()
	g.push(item{err: err})
}

func (s *Session) end(err error) {
	s.mu.Lock()
	s.err = err
	gens := s.gens
	s.gens = nil
	s.mu.Unlock()
	close(s.done)
	s.cancel()
	for _, g := range gens {
		gerr := err
		if gerr == nil {
			gerr = io.ErrUnexpectedEOF // the server ended the stream before this generation's last Finished event
		}
		g.push(item{err: gerr})
	}
}

// item is one queued event, or the error that ends a generation.
type item struct {
	ev   Event
	err  error
	last bool // ev is the generation's last Finished event (one per sample)
}

// Generation is one generation running on a Session. Read it from one
// goroutine at a time.
type Generation struct {
	id      string
	session *Session
	notify  chan struct{} // capacity 1: "the queue grew"
	samples uint32        // the request's n, at least 1

	finishes finishes // which samples have finished; used by the session's receiving goroutine only
	req      *pb.GenerateRequest

	// Guarded by session.mu.
	started         bool // an event of it arrived: no more retries
	cancelRequested bool // Cancel was called: no more retries
	attempts        int  // Start requests sent

	mu    sync.Mutex
	queue []item
	err   error // sticky once the last event was read: io.EOF or the failure
}

// ID is the generation's request id.
func (g *Generation) ID() string { return g.id }

// Attempts is the number of Start requests sent for this generation so far:
// 1, plus one per retry (see [RetryPolicy]). It is safe to call at any time.
func (g *Generation) Attempts() int {
	g.session.mu.Lock()
	defer g.session.mu.Unlock()
	return g.attempts
}

// Cancel cancels this generation; it then ends with FINISH_REASON_CANCELLED.
func (g *Generation) Cancel() error { return g.session.Cancel(g.id) }

// Recv returns the generation's next event, blocking until one arrives or
// ctx is done. After the last Finished event (one per sample: n of them for a
// request of n samples) it returns io.EOF. A generation the server failed
// returns its status as an error (see google.golang.org/grpc/status), as does
// a generation whose stream ended before it finished (io.ErrUnexpectedEOF
// when the server ended the stream with OK).
//
// When ctx is done first, Recv returns ctx.Err() and the generation goes on:
// nothing is lost, a later Recv returns the next event. To stop the
// generation itself, call Cancel.
func (g *Generation) Recv(ctx context.Context) (Event, error) {
	for {
		g.mu.Lock()
		if g.err != nil {
			err := g.err
			g.mu.Unlock()
			return Event{}, err
		}
		if len(g.queue) > 0 {
			it := g.queue[0]
			g.queue[0] = item{}
			g.queue = g.queue[1:]
			switch {
			case it.err != nil:
				g.err = it.err
			case it.last:
				g.err = io.EOF
			}
			g.mu.Unlock()
			if it.err != nil {
				return Event{}, it.err
			}
			return it.ev, nil
		}
		g.mu.Unlock()
		select {
		case <-g.notify:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// recv is Recv without a context, for Events and Collect, which wait until the
// generation or its session ends.
func (g *Generation) recv() (Event, error) { return g.Recv(context.Background()) }

// Events iterates over the remaining events; iteration ends after the last
// Finished (one per sample), or with one non-nil error.
func (g *Generation) Events() iter.Seq2[Event, error] { return events(g.recv) }

// Collect reads the remaining events and returns the whole generation. A
// request of n > 1 samples gets [ErrMultipleSamples] and nothing is read: use
// CollectSamples.
func (g *Generation) Collect() (*Result, error) {
	if g.samples > 1 {
		return nil, ErrMultipleSamples
	}
	return collect(g.recv)
}

// CollectSamples reads the remaining events and returns one Result per
// sample, indexed by sample index, as [Stream.CollectSamples] does.
func (g *Generation) CollectSamples() ([]*Result, error) { return collectSamples(g.samples, g.recv) }

func (g *Generation) push(it item) {
	g.mu.Lock()
	g.queue = append(g.queue, it)
	g.mu.Unlock()
	select {
	case g.notify <- struct{}{}:
	default:
	}
}
