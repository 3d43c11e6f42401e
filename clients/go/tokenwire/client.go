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
}

// Dial returns a client for target ("host:port" or any gRPC target) with
// these gRPC dial options. With no options the connection is plaintext
// (insecure credentials). [Connect] is the simpler way to add TLS, mTLS and
// a bearer token. Like grpc.NewClient, it does not connect until the first
// call.
func Dial(target string, opts ...grpc.DialOption) (*Client, error) {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(target, opts...)
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

// Event is one event of a generation: exactly one of Started, Delta and
// Finished is set.
type Event struct {
	RequestID string
	Started   *pb.Started
	Delta     *pb.Delta
	Finished  *pb.Finished
}

// Result is a whole generation: its concatenated deltas and final event.
type Result struct {
	RequestID string
	Text      string
	TokenIDs  []uint32
	Started   *pb.Started
	Finished  *pb.Finished
}

// Reason is why the generation ended.
func (r *Result) Reason() pb.FinishReason { return r.Finished.GetReason() }

// CompletionTokens is the number of tokens generated and delivered.
func (r *Result) CompletionTokens() uint32 { return r.Finished.GetUsage().GetCompletionTokens() }

// Add folds one event into the result: it records Started and Finished and
// appends a delta's text and token ids. Use it to build a Result while also
// handling each event yourself.
func (r *Result) Add(ev Event) {
	if ev.RequestID != "" {
		r.RequestID = ev.RequestID
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
	stream grpc.ServerStreamingClient[pb.GenerateResponse]
	cancel context.CancelFunc
	err    error // sticky: io.EOF after Finished, or the call's error
}

// Generate starts a generation and returns its event stream. ctx bounds the
// whole call: cancelling it (or its deadline passing) cancels the generation
// on the server. Read the stream to its end or call Close.
func (c *Client) Generate(ctx context.Context, req *pb.GenerateRequest, opts ...grpc.CallOption) (*Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.gen.Generate(ctx, req, opts...)
	if err != nil {
		cancel()
		return nil, err
	}
	return &Stream{stream: stream, cancel: cancel}, nil
}

// Recv returns the next event. After the Finished event it returns io.EOF;
// a failed call returns its gRPC status error (see google.golang.org/grpc/status).
func (s *Stream) Recv() (Event, error) {
	if s.err != nil {
		return Event{}, s.err
	}
	resp, err := s.stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the contract promises a Finished event
		}
		s.fail(err)
		return Event{}, err
	}
	ev := Event{
		RequestID: resp.GetRequestId(),
		Started:   resp.GetStarted(),
		Delta:     resp.GetDelta(),
		Finished:  resp.GetFinished(),
	}
	if ev.Finished != nil {
		s.fail(io.EOF)
	}
	return ev, nil
}

func (s *Stream) fail(err error) {
	s.err = err
	s.cancel()
}

// Events iterates over the remaining events; iteration ends after Finished,
// or with one non-nil error.
func (s *Stream) Events() iter.Seq2[Event, error] {
	return events(s.Recv)
}

// Collect reads the remaining events and returns the whole generation.
func (s *Stream) Collect() (*Result, error) {
	return collect(s.Recv)
}

// Close cancels the call if it is still running.
func (s *Stream) Close() { s.cancel() }

// Complete runs one generation to its end and returns it.
func (c *Client) Complete(ctx context.Context, req *pb.GenerateRequest, opts ...grpc.CallOption) (*Result, error) {
	s, err := c.Generate(ctx, req, opts...)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Collect()
}

// Abort cancels the generation with the given id wherever it runs. It reports
// whether one was in flight; unknown and finished ids are not an error.
func (c *Client) Abort(ctx context.Context, requestID string, opts ...grpc.CallOption) (bool, error) {
	resp, err := c.gen.Abort(ctx, &pb.AbortRequest{RequestId: requestID}, opts...)
	return resp.GetCancelled(), err
}

// ModelInfo describes the served model and engine.
func (c *Client) ModelInfo(ctx context.Context, opts ...grpc.CallOption) (*pb.GetModelInfoResponse, error) {
	return c.model.GetModelInfo(ctx, &pb.GetModelInfoRequest{}, opts...)
}

// Load reports the engine's current occupancy.
func (c *Client) Load(ctx context.Context, opts ...grpc.CallOption) (*pb.GetLoadResponse, error) {
	return c.model.GetLoad(ctx, &pb.GetLoadRequest{}, opts...)
}

// Tokenize tokenizes text as a text prompt would be.
func (c *Client) Tokenize(ctx context.Context, text string, opts ...grpc.CallOption) ([]uint32, error) {
	req := &pb.TokenizeRequest{Input: &pb.TokenizeRequest_Text{Text: text}}
	resp, err := c.model.Tokenize(ctx, req, opts...)
	return resp.GetTokenIds(), err
}

// Detokenize turns token ids back into text, without special tokens.
func (c *Client) Detokenize(ctx context.Context, ids []uint32, opts ...grpc.CallOption) (string, error) {
	resp, err := c.model.Detokenize(ctx, &pb.DetokenizeRequest{TokenIds: ids}, opts...)
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
