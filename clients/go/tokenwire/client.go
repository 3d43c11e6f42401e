package tokenwire

import (
	"context"
	"errors"
	"io"
	"iter"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Client talks to one tokenwire server.
type Client struct {
	conn  *grpc.ClientConn // nil when built with New
	gen   pb.GenerationServiceClient
	model pb.ModelServiceClient
	retry *RetryPolicy // nil: DefaultRetryPolicy
}

// Dial returns a client for target ("host:port" or any gRPC target) with
// these gRPC dial options. The connection is plaintext (insecure transport
// credentials) unless the options set transport credentials or a credentials
// bundle of their own; other options (per-RPC credentials, a dialer,
// interceptors) keep that default. [Connect] is the simpler way to add TLS,
// mTLS and a bearer token. Like grpc.NewClient, it does not connect until the
// first call.
func Dial(target string, opts ...grpc.DialOption) (*Client, error) {
	// The default goes first, so that transport credentials among opts
	// replace it (the last one wins).
	withDefault := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	conn, err := grpc.NewClient(target, withDefault...)
	if err != nil {
		// grpc refuses transport credentials next to a credentials bundle:
		// opts may carry a bundle, which then replaces the default.
		if c, err2 := grpc.NewClient(target, opts...); err2 == nil {
			conn, err = c, nil
		}
	}
	if err != nil {
		return nil, err
	}
	c := New(conn)
	c.conn = conn
	return c, nil
}

// New returns a client over an existing connection; Close then does nothing.
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{gen: pb.NewGenerationServiceClient(conn), model: pb.NewModelServiceClient(conn)}
}

// Close closes the connection opened by Dial.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// GenerationService returns the raw generated stub.
func (c *Client) GenerationService() pb.GenerationServiceClient { return c.gen }

// ModelService returns the raw generated stub.
func (c *Client) ModelService() pb.ModelServiceClient { return c.model }

// ErrMultipleSamples is returned by Collect and Complete for a request of
// n > 1 samples ([WithN]), whose events they cannot fold into one Result; read
// those with CollectSamples or CompleteSamples. Nothing was read or sent.
var ErrMultipleSamples = errors.New("tokenwire: the request asks for n > 1 samples: use CollectSamples or CompleteSamples, which give one Result per sample")

// Event is one event of a generation: exactly one of Started, Delta and
// Finished is set. With n > 1 samples there is one Started for the request,
// and the deltas of all samples interleaved, each sample ending with its own
// Finished; [Event.SampleIndex] tells them apart.
type Event struct {
	RequestID string
	Started   *pb.Started
	Delta     *pb.Delta
	Finished  *pb.Finished
}

// SampleIndex is the sample a Delta or Finished event belongs to (0 to
// n - 1; always 0 when n is 1), and 0 for Started, which belongs to them all.
func (e Event) SampleIndex() uint32 {
	if e.Delta != nil {
		return e.Delta.GetSampleIndex()
	}
	return e.Finished.GetSampleIndex()
}

// Result is one whole completion (one sample of the request when n > 1): its
// concatenated deltas and its Finished event, with the request's Started.
type Result struct {
	RequestID   string
	SampleIndex uint32 // which sample (0 to n - 1); 0 when n is 1
	Text        string
	TokenIDs    []uint32
	Started     *pb.Started
	Finished    *pb.Finished
}

// Reason is why the generation ended.
func (r *Result) Reason() pb.FinishReason { return r.Finished.GetReason() }

// CompletionTokens is the number of tokens generated and delivered.
func (r *Result) CompletionTokens() uint32 { return r.Finished.GetUsage().GetCompletionTokens() }

// Add folds one event into the result: it records Started, and of the
// result's own sample (r.SampleIndex) it appends a delta's text and token ids
// and records Finished; deltas and Finished events of other samples are
// ignored. Use it to build a Result while also handling each event yourself;
// with n > 1, keep one Result per sample (or use CollectSamples).
func (r *Result) Add(ev Event) {
	if ev.RequestID != "" {
		r.RequestID = ev.RequestID
	}
	if ev.Started == nil && ev.SampleIndex() != r.SampleIndex {
		return
	}
	switch {
	case ev.Started != nil:
		r.Started = ev.Started
	case ev.Delta != nil:
		r.Text += ev.Delta.GetText()
		r.TokenIDs = append(r.TokenIDs, ev.Delta.GetTokenIds()...)
	case ev.Finished != nil:
		r.Finished = ev.Finished
	}
}

// Stream is one Generate call in progress.
type Stream struct {
	stream   grpc.ServerStreamingClient[pb.GenerateResponse]
	ctx      context.Context
	cancel   context.CancelFunc
	open     func() (grpc.ServerStreamingClient[pb.GenerateResponse], error)
	policy   RetryPolicy
	attempts int      // calls made so far
	received bool     // an event arrived: no more retries
	samples  uint32   // the request's n, at least 1
	finishes finishes // which samples have finished
	err      error    // sticky: io.EOF after the last Finished, or the call's error
}

// Generate starts a generation and returns its event stream. ctx bounds the
// whole call: cancelling it (or its deadline passing) cancels the generation
// on the server. Read the stream to its end or call Close. A call that fails
// with a retryable code before its first event is retried per the client's
// [RetryPolicy] (or the call's, [WithCallRetryPolicy]), within ctx.
func (c *Client) Generate(ctx context.Context, req *pb.GenerateRequest, opts ...grpc.CallOption) (*Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	n := sampleCount(req)
	s := &Stream{
		ctx:    ctx,
		cancel: cancel,
		open: func() (grpc.ServerStreamingClient[pb.GenerateResponse], error) {
			return c.gen.Generate(ctx, req, opts...)
		},
		policy:   c.retryPolicy(opts),
		samples:  n,
		finishes: newFinishes(n),
	}
	if err := s.connect(); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// connect opens the call, retrying per the policy.
func (s *Stream) connect() error {
	for {
		s.attempts++
		stream, err := s.open()
		if err == nil {
			s.stream = stream
			return nil
		}
		if err = s.policy.wait(s.ctx, s.attempts, err); err != nil {
			return err
		}
	}
}

// Recv returns the next event. After the last Finished event (one per sample:
// n of them for a request of n samples) it returns io.EOF; a failed call
// returns its gRPC status error (see google.golang.org/grpc/status), and a
// call the server ended before every sample's Finished event returns
// io.ErrUnexpectedEOF.
func (s *Stream) Recv() (Event, error) {
	if s.err != nil {
		return Event{}, s.err
	}
	resp, err := s.stream.Recv()
	for err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the contract promises a Finished event per sample
		} else if !s.received {
			// Nothing arrived yet: the call may be re-sent.
			if err = s.policy.wait(s.ctx, s.attempts, err); err == nil {
				if err = s.connect(); err == nil {
					resp, err = s.stream.Recv()
					continue
				}
			}
		}
		s.fail(err)
		return Event{}, err
	}
	s.received = true
	ev := Event{
		RequestID: resp.GetRequestId(),
		Started:   resp.GetStarted(),
		Delta:     resp.GetDelta(),
		Finished:  resp.GetFinished(),
	}
	if ev.Finished != nil && s.finishes.add(ev.Finished) {
		s.fail(io.EOF)
	}
	return ev, nil
}

func (s *Stream) fail(err error) {
	s.err = err
	s.cancel()
}

// Events iterates over the remaining events; iteration ends after the last
// Finished (one per sample), or with one non-nil error.
func (s *Stream) Events() iter.Seq2[Event, error] {
	return events(s.Recv)
}

// Collect reads the remaining events and returns the whole generation. A
// request of n > 1 samples gets [ErrMultipleSamples] and nothing is read: use
// CollectSamples.
func (s *Stream) Collect() (*Result, error) {
	if s.samples > 1 {
		return nil, ErrMultipleSamples
	}
	return collect(s.Recv)
}

// CollectSamples reads the remaining events and returns one Result per
// sample, indexed by sample index (len n; one for a request without n). Each
// has the request's Started and its own sample's text, token ids and
// Finished. On an error it returns what it gathered so far (nil when no event
// arrived) with the error.
func (s *Stream) CollectSamples() ([]*Result, error) {
	return collectSamples(s.samples, s.Recv)
}

// Close cancels the call if it is still running.
func (s *Stream) Close() { s.cancel() }

// Attempts is the number of calls made for this generation so far: 1, plus
// one per retry (see [RetryPolicy]). Read it after Generate returns, e.g.
// once the stream is read to its end; like Recv, it is not safe for use
// concurrently with Recv.
func (s *Stream) Attempts() int { return s.attempts }

// Complete runs one generation to its end and returns it. A request of n > 1
// samples gets [ErrMultipleSamples] and is not sent: use CompleteSamples.
func (c *Client) Complete(ctx context.Context, req *pb.GenerateRequest, opts ...grpc.CallOption) (*Result, error) {
	if sampleCount(req) > 1 {
		return nil, ErrMultipleSamples
	}
	s, err := c.Generate(ctx, req, opts...)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Collect()
}

// CompleteSamples runs one generation of n samples ([WithN]) to its end and
// returns one Result per sample, indexed by sample index (see
// [Stream.CollectSamples]).
func (c *Client) CompleteSamples(ctx context.Context, req *pb.GenerateRequest, opts ...grpc.CallOption) ([]*Result, error) {
	s, err := c.Generate(ctx, req, opts...)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.CollectSamples()
}

// Abort cancels the generation with the given id wherever it runs. It reports
// whether one was in flight; unknown and finished ids are not an error.
func (c *Client) Abort(ctx context.Context, requestID string, opts ...grpc.CallOption) (bool, error) {
	resp, err := unary(ctx, c, opts, func() (*pb.AbortResponse, error) {
		return c.gen.Abort(ctx, &pb.AbortRequest{RequestId: requestID}, opts...)
	})
	return resp.GetCancelled(), err
}

// ModelInfo describes the served model and engine.
func (c *Client) ModelInfo(ctx context.Context, opts ...grpc.CallOption) (*pb.GetModelInfoResponse, error) {
	return unary(ctx, c, opts, func() (*pb.GetModelInfoResponse, error) {
		return c.model.GetModelInfo(ctx, &pb.GetModelInfoRequest{}, opts...)
	})
}

// Load reports the engine's current occupancy.
func (c *Client) Load(ctx context.Context, opts ...grpc.CallOption) (*pb.GetLoadResponse, error) {
	return unary(ctx, c, opts, func() (*pb.GetLoadResponse, error) {
		return c.model.GetLoad(ctx, &pb.GetLoadRequest{}, opts...)
	})
}

// Tokenize tokenizes text as a text prompt would be.
func (c *Client) Tokenize(ctx context.Context, text string, opts ...grpc.CallOption) ([]uint32, error) {
	req := &pb.TokenizeRequest{Input: &pb.TokenizeRequest_Text{Text: text}}
	resp, err := unary(ctx, c, opts, func() (*pb.TokenizeResponse, error) {
		return c.model.Tokenize(ctx, req, opts...)
	})
	return resp.GetTokenIds(), err
}

// TokenizeChat tokenizes a conversation as a chat prompt would be (rendered
// with the model's chat template), and returns the token ids and the
// rendered prompt text.
func (c *Client) TokenizeChat(ctx context.Context, messages []*pb.ChatMessage, opts ...grpc.CallOption) ([]uint32, string, error) {
	req := &pb.TokenizeRequest{Input: &pb.TokenizeRequest_Chat{Chat: &pb.Chat{Messages: messages}}}
	resp, err := unary(ctx, c, opts, func() (*pb.TokenizeResponse, error) {
		return c.model.Tokenize(ctx, req, opts...)
	})
	return resp.GetTokenIds(), resp.GetRenderedPrompt(), err
}

// Detokenize turns token ids back into text, without special tokens.
func (c *Client) Detokenize(ctx context.Context, ids []uint32, opts ...grpc.CallOption) (string, error) {
	resp, err := unary(ctx, c, opts, func() (*pb.DetokenizeResponse, error) {
		return c.model.Detokenize(ctx, &pb.DetokenizeRequest{TokenIds: ids}, opts...)
	})
	return resp.GetText(), err
}

func events(recv func() (Event, error)) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			ev, err := recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

func collect(recv func() (Event, error)) (*Result, error) {
	var r Result
	for {
		ev, err := recv()
		if errors.Is(err, io.EOF) {
			return &r, nil
		}
		if err != nil {
			return &r, err
		}
		r.Add(ev)
	}
}

// collectSamples gathers the events of a request of n samples into one Result
// per sample. The Results are made once the first event arrives (the server
// accepted n by then), not for an n it refuses.
func collectSamples(n uint32, recv func() (Event, error)) ([]*Result, error) {
	var results []*Result
	for {
		ev, err := recv()
		if errors.Is(err, io.EOF) {
			return results, nil
		}
		if err != nil {
			return results, err
		}
		if results == nil {
			results = make([]*Result, n)
			for i := range results {
				results[i] = &Result{SampleIndex: uint32(i)}
			}
		}
		if ev.Started != nil {
			for _, r := range results {
				r.Add(ev)
			}
		} else if i := ev.SampleIndex(); i < n {
			results[i].Add(ev)
		}
	}
}

// sampleCount is the number of samples req asks for: its n, or 1 when n is
// absent or 0.
func sampleCount(req *pb.GenerateRequest) uint32 {
	if n := req.GetN(); n > 1 {
		return n
	}
	return 1
}

// finishes tracks which samples of a generation have had their Finished
// event.
type finishes struct {
	samples uint32
	seen    map[uint32]struct{} // made at the first Finished of a request of n > 1
}

func newFinishes(samples uint32) finishes { return finishes{samples: samples} }

// add records a Finished event and reports whether every sample has now
// finished. A repeated or out-of-range sample index does not count.
func (f *finishes) add(fin *pb.Finished) bool {
	i := fin.GetSampleIndex()
	if f.samples <= 1 {
		return true
	}
	if i < f.samples {
		if f.seen == nil {
			f.seen = make(map[uint32]struct{})
		}
		f.seen[i] = struct{}{}
	}
	return uint32(len(f.seen)) == f.samples
}
