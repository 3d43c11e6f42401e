package tokenwire_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
	"github.com/tokenwire/tokenwire/clients/go/tokenwire"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// fakeServer generates one delta per word of a text prompt, each ending in a
// space, then finishes with FINISH_REASON_LENGTH. The prompt "forever"
// generates until cancelled; "fail" is rejected with INVALID_ARGUMENT.
type fakeServer struct {
	pb.UnimplementedGenerationServiceServer
	running *registry // generations in flight, for Abort; nil: Abort cancels nothing
	// reject, when set, may fail a Session start before it runs (it may send
	// events first).
	reject func(req *pb.GenerateRequest, send func(*pb.SessionResponse) error) error
}

// registry maps the request ids of running generations to their cancel
// functions, so that Abort can reach a generation on any stream.
type registry struct {
	mu      sync.Mutex
	cancels map[string]context.CancelFunc
	aborts  []string // ids passed to Abort, in order
}

func newRegistry() *registry { return &registry{cancels: map[string]context.CancelFunc{}} }

func (r *registry) add(id string, cancel context.CancelFunc) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancels[id] = cancel
}

func (r *registry) remove(id string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.cancels, id)
}

func (r *registry) abort(id string) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.aborts = append(r.aborts, id)
	cancel := r.cancels[id]
	if cancel != nil {
		cancel()
	}
	return cancel != nil
}

func (r *registry) aborted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.aborts)
}

const tick = 5 * time.Millisecond

func words(req *pb.GenerateRequest) ([]string, error) {
	switch text := req.GetText(); text {
	case "fail":
		st, _ := status.New(codes.InvalidArgument, "bad prompt").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "text", Description: "bad prompt"}},
		})
		return nil, st.Err()
	case "forever":
		return nil, nil
	default:
		return strings.Fields(text), nil
	}
}

// run emits one generation's events through send until it ends or ctx is done.
// A request for n > 1 samples is served by runSamples.
func run(ctx context.Context, req *pb.GenerateRequest, send func(*pb.SessionResponse) error) error {
	ws, err := words(req)
	if err != nil {
		return err
	}
	if req.GetN() > 1 {
		return runSamples(req, ws, send)
	}
	id := req.GetRequestId()
	if err := send(&pb.SessionResponse{RequestId: id, Event: &pb.SessionResponse_Started{Started: &pb.Started{Model: "fake"}}}); err != nil {
		return err
	}
	finish := func(reason pb.FinishReason, n int) error {
		fin := &pb.Finished{Reason: reason, Usage: &pb.Usage{CompletionTokens: uint32(n)}}
		return send(&pb.SessionResponse{RequestId: id, Event: &pb.SessionResponse_Finished{Finished: fin}})
	}
	for n := 0; ; n++ {
		if ws != nil && n == len(ws) {
			return finish(pb.FinishReason_FINISH_REASON_LENGTH, n)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// The call's deadline passed: it fails, as on the real
				// server (a Finished event here could reach the client
				// before its own deadline does).
				return status.FromContextError(ctx.Err()).Err()
			}
			return finish(pb.FinishReason_FINISH_REASON_CANCELLED, n)
		case <-time.After(tick):
		}
		word := "x"
		if ws != nil {
			word = ws[n]
		}
		delta := &pb.Delta{Text: word + " ", TokenIds: []uint32{uint32(n)}}
		if err := send(&pb.SessionResponse{RequestId: id, Event: &pb.SessionResponse_Delta{Delta: delta}}); err != nil {
			return err
		}
	}
}

func (fakeServer) Generate(req *pb.GenerateRequest, stream grpc.ServerStreamingServer[pb.GenerateResponse]) error {
	if req.GetRequestId() == "" {
		req.RequestId = "assigned"
	}
	return run(stream.Context(), req, func(r *pb.SessionResponse) error {
		out := &pb.GenerateResponse{RequestId: r.GetRequestId()}
		switch ev := r.GetEvent().(type) {
		case *pb.SessionResponse_Started:
			out.Event = &pb.GenerateResponse_Started{Started: ev.Started}
		case *pb.SessionResponse_Delta:
			out.Event = &pb.GenerateResponse_Delta{Delta: ev.Delta}
		case *pb.SessionResponse_Finished:
			out.Event = &pb.GenerateResponse_Finished{Finished: ev.Finished}
		}
		return stream.Send(out)
	})
}

func (f fakeServer) Session(stream grpc.BidiStreamingServer[pb.SessionRequest, pb.SessionResponse]) error {
	var sendMu, mu sync.Mutex
	send := func(r *pb.SessionResponse) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(r)
	}
	cancels := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil // half-closed: the deferred Wait lets generations finish
		}
		if err != nil {
			return err
		}
		if c := req.GetCancel(); c != nil {
			mu.Lock()
			if cancel := cancels[c.GetRequestId()]; cancel != nil {
				cancel()
			}
			mu.Unlock()
			continue
		}
		start := req.GetStart()
		ctx, cancel := context.WithCancel(stream.Context())
		mu.Lock()
		cancels[start.GetRequestId()] = cancel
		mu.Unlock()
		f.running.add(start.GetRequestId(), cancel)
		wg.Go(func() {
			defer cancel()
			defer f.running.remove(start.GetRequestId())
			err := error(nil)
			if f.reject != nil {
				err = f.reject(start, send)
			}
			if err == nil {
				err = run(ctx, start, send)
			}
			if err != nil {
				st, _ := status.FromError(err)
				_ = send(&pb.SessionResponse{RequestId: start.GetRequestId(), Event: &pb.SessionResponse_Error{Error: st.Proto()}})
			}
		})
	}
}

func (f fakeServer) Abort(_ context.Context, req *pb.AbortRequest) (*pb.AbortResponse, error) {
	cancelled := f.running.abort(req.GetRequestId())
	return &pb.AbortResponse{Cancelled: cancelled || req.GetRequestId() == "running"}, nil
}

func newClient(t *testing.T) *tokenwire.Client {
	t.Helper()
	client, _ := newClientServer(t)
	return client
}

// newClientServer returns a client of a fake server whose Abort reaches the
// generations of every stream, with that server's registry.
func newClientServer(t *testing.T) (*tokenwire.Client, *registry) {
	t.Helper()
	running := newRegistry()
	dialer := serveFake(t, fakeServer{running: running})
	client, err := tokenwire.Dial("passthrough:///bufnet",
		grpc.WithContextDialer(dialer), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client, running
}

// serveFake serves srv (and whatever register adds) over bufconn until the
// test ends and returns a dialer for it.
func serveFake(t *testing.T, srv pb.GenerationServiceServer, register ...func(*grpc.Server)) func(context.Context, string) (net.Conn, error) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	server := grpc.NewServer()
	pb.RegisterGenerationServiceServer(server, srv)
	for _, r := range register {
		r(server)
	}
	go func() { _ = server.Serve(lis) }()
	t.Cleanup(server.Stop)
	return func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestComplete(t *testing.T) {
	client := newClient(t)
	res, err := client.Complete(testContext(t), tokenwire.TextRequest("the sky is blue"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "the sky is blue " || res.Reason() != pb.FinishReason_FINISH_REASON_LENGTH ||
		res.CompletionTokens() != 4 || len(res.TokenIDs) != 4 || res.RequestID != "assigned" || res.Started.GetModel() != "fake" {
		t.Fatalf("unexpected result %+v", res)
	}
}

func TestStreamEventsThenEOF(t *testing.T) {
	client := newClient(t)
	stream, err := client.Generate(testContext(t), tokenwire.TextRequest("a b", tokenwire.WithRequestID("r1")))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for ev, err := range stream.Events() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.RequestID != "r1" {
			t.Fatalf("request id %q", ev.RequestID)
		}
		switch {
		case ev.Started != nil:
			kinds = append(kinds, "started")
		case ev.Delta != nil:
			kinds = append(kinds, "delta")
		case ev.Finished != nil:
			kinds = append(kinds, "finished")
		}
	}
	if got := strings.Join(kinds, ","); got != "started,delta,delta,finished" {
		t.Fatalf("events %s", got)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after finished: %v", err)
	}
}

func TestGenerateDeadline(t *testing.T) {
	client := newClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := client.Complete(ctx, tokenwire.TextRequest("forever"))
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("want DEADLINE_EXCEEDED, got %v", err)
	}
}

func TestSessionMultiplexesAndCancels(t *testing.T) {
	client := newClient(t)
	session, err := client.OpenSession(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	keep, err := session.Start(tokenwire.TextRequest("one two three", tokenwire.WithRequestID("keep")))
	if err != nil {
		t.Fatal(err)
	}
	drop, err := session.Start(tokenwire.TextRequest("forever", tokenwire.WithRequestID("drop")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := session.Start(tokenwire.TextRequest("forever", tokenwire.WithRequestID("drop"))); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("duplicate id: %v", err)
	}
	bad, err := session.Start(tokenwire.TextRequest("fail", tokenwire.WithRequestID("bad")))
	if err != nil {
		t.Fatal(err)
	}

	// Read "drop" first, while "keep" runs to its end unread.
	var dropped tokenwire.Result
	cancelled := false
	for ev, err := range drop.Events() {
		if err != nil {
			t.Fatal(err)
		}
		dropped.Add(ev)
		if ev.Delta != nil && !cancelled {
			cancelled = true
			if err := drop.Cancel(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if dropped.Reason() != pb.FinishReason_FINISH_REASON_CANCELLED || dropped.Text == "" {
		t.Fatalf("drop: %+v", dropped)
	}
	kept, err := keep.Collect()
	if err != nil {
		t.Fatal(err)
	}
	if kept.RequestID != "keep" || kept.Text != "one two three " || kept.Reason() != pb.FinishReason_FINISH_REASON_LENGTH {
		t.Fatalf("keep: %+v", kept)
	}
	if _, err := bad.Collect(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad: %v", err)
	}

	if err := session.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := session.Wait(); err != nil {
		t.Fatalf("session ended with %v", err)
	}
	if _, err := session.Start(tokenwire.TextRequest("late", tokenwire.WithRequestID("late"))); !errors.Is(err, tokenwire.ErrSessionClosed) {
		t.Fatalf("start after close: %v", err)
	}
}

func TestSessionCloseFailsInFlight(t *testing.T) {
	client := newClient(t)
	session, err := client.OpenSession(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := session.Start(tokenwire.TextRequest("forever", tokenwire.WithRequestID("g")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gen.Recv(testContext(t)); err != nil { // started
		t.Fatal(err)
	}
	session.Close()
	if _, err := gen.Collect(); status.Code(err) != codes.Canceled {
		t.Fatalf("want CANCELLED, got %v", err)
	}
}

func TestSessionRequiresRequestID(t *testing.T) {
	client := newClient(t)
	session, err := client.OpenSession(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	if _, err := session.Start(tokenwire.TextRequest("x")); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("want INVALID_ARGUMENT, got %v", err)
	}
}

func TestAbort(t *testing.T) {
	client := newClient(t)
	for id, want := range map[string]bool{"running": true, "unknown": false} {
		got, err := client.Abort(testContext(t), id)
		if err != nil || got != want {
			t.Fatalf("Abort(%q) = %v, %v", id, got, err)
		}
	}
}

func TestRequestOptions(t *testing.T) {
	req := tokenwire.ChatRequest([]*pb.ChatMessage{tokenwire.System("be brief"), tokenwire.User("hi")},
		tokenwire.WithRequestID("id"), tokenwire.Greedy(), tokenwire.WithSeed(7), tokenwire.WithMaxTokens(5),
		tokenwire.WithStop("\n"), tokenwire.WithIgnoreEOS(), tokenwire.WithTimeout(2*time.Second))
	if req.GetRequestId() != "id" || len(req.GetChat().GetMessages()) != 2 ||
		req.GetSampling().Temperature == nil || req.GetSampling().GetTemperature() != 0 || req.GetSampling().GetSeed() != 7 ||
		req.GetStopping().GetMaxTokens() != 5 || req.GetStopping().GetStop()[0] != "\n" || !req.GetStopping().GetIgnoreEos() ||
		req.GetTimeout().AsDuration() != 2*time.Second {
		t.Fatalf("unexpected request %v", req)
	}
}

func TestStructuredOutputOptions(t *testing.T) {
	cases := []struct {
		name  string
		opt   tokenwire.Option
		check func(*pb.StructuredOutput) bool
	}{
		{"json schema", tokenwire.WithJSONSchema(`{"type":"object"}`), func(so *pb.StructuredOutput) bool {
			return so.GetJsonSchema() == `{"type":"object"}`
		}},
		{"json object", tokenwire.WithJSONObject(), func(so *pb.StructuredOutput) bool {
			_, ok := so.GetFormat().(*pb.StructuredOutput_JsonObject)
			return ok && so.GetJsonObject() != nil
		}},
		{"regex", tokenwire.WithRegex(`[0-9]+`), func(so *pb.StructuredOutput) bool {
			return so.GetRegex() == `[0-9]+`
		}},
		{"lark", tokenwire.WithLarkGrammar(`start: "yes" | "no"`), func(so *pb.StructuredOutput) bool {
			return so.GetGrammar().GetSyntax() == pb.Grammar_SYNTAX_LARK && so.GetGrammar().GetText() == `start: "yes" | "no"`
		}},
		{"gbnf", tokenwire.WithGBNFGrammar(`root ::= "yes" | "no"`), func(so *pb.StructuredOutput) bool {
			return so.GetGrammar().GetSyntax() == pb.Grammar_SYNTAX_GBNF && so.GetGrammar().GetText() == `root ::= "yes" | "no"`
		}},
		{"choice", tokenwire.WithChoice("red", "green"), func(so *pb.StructuredOutput) bool {
			return slices.Equal(so.GetChoice().GetOptions(), []string{"red", "green"})
		}},
		{"raw", tokenwire.WithStructuredOutput(&pb.StructuredOutput{Format: &pb.StructuredOutput_Regex{Regex: "a"}}), func(so *pb.StructuredOutput) bool {
			return so.GetRegex() == "a"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := tokenwire.TextRequest("x", c.opt)
			if so := req.GetStructuredOutput(); so == nil || !c.check(so) {
				t.Fatalf("structured_output %v", so)
			}
			// One format per request: the last option wins.
			req = tokenwire.TextRequest("x", tokenwire.WithRegex("b"), c.opt)
			if so := req.GetStructuredOutput(); !c.check(so) {
				t.Fatalf("after another format: %v", so)
			}
		})
	}
	// An option applied twice builds a fresh message each time.
	opt := tokenwire.WithChoice("a", "b")
	one, two := tokenwire.TextRequest("x", opt), tokenwire.TextRequest("y", opt)
	one.GetStructuredOutput().GetChoice().Options[0] = "changed"
	if two.GetStructuredOutput().GetChoice().GetOptions()[0] != "a" {
		t.Fatal("two requests share one structured_output message")
	}
	if tokenwire.TextRequest("x").GetStructuredOutput() != nil {
		t.Fatal("structured_output set without an option")
	}
}

func TestSamplesAndLogitBiasOptions(t *testing.T) {
	bias := map[uint32]float32{1: -100, 2: 5}
	req := tokenwire.TextRequest("x", tokenwire.WithN(3), tokenwire.WithTemperature(0.7),
		tokenwire.WithLogitBias(bias), tokenwire.WithLogitBias(map[uint32]float32{2: 100, 3: -1.5}))
	if req.N == nil || req.GetN() != 3 {
		t.Fatalf("n %v", req.N)
	}
	want := map[uint32]float32{1: -100, 2: 100, 3: -1.5}
	if !maps.Equal(req.GetSampling().GetLogitBias(), want) || req.GetSampling().GetTemperature() != 0.7 {
		t.Fatalf("sampling %v", req.GetSampling())
	}
	bias[4] = 1 // the caller's map is not the request's
	if _, ok := req.GetSampling().GetLogitBias()[4]; ok || len(bias) != 3 {
		t.Fatal("WithLogitBias kept the caller's map")
	}
	plain := tokenwire.TextRequest("x")
	if plain.N != nil || plain.GetSampling().GetLogitBias() != nil {
		t.Fatalf("unexpected defaults %v", plain)
	}
}
