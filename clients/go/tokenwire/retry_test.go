package tokenwire_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
	"github.com/tokenwire/tokenwire/clients/go/tokenwire"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// flakyServer fails its first `failures` Generate and Abort calls with code
// (and RetryInfo retryDelay when set); with afterStarted, a failing Generate
// first sends its Started event.
type flakyServer struct {
	fakeServer
	failures     int32
	code         codes.Code
	retryDelay   time.Duration
	afterStarted bool
	calls        atomic.Int32
}

func (f *flakyServer) failure() error {
	if f.calls.Add(1) > f.failures {
		return nil
	}
	st := status.New(f.code, "try again")
	if f.retryDelay > 0 {
		st, _ = st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(f.retryDelay)})
	}
	return st.Err()
}

func (f *flakyServer) Generate(req *pb.GenerateRequest, stream grpc.ServerStreamingServer[pb.GenerateResponse]) error {
	if err := f.failure(); err != nil {
		if f.afterStarted {
			_ = stream.Send(&pb.GenerateResponse{Event: &pb.GenerateResponse_Started{Started: &pb.Started{}}})
		}
		return err
	}
	return f.fakeServer.Generate(req, stream)
}

func (f *flakyServer) Abort(ctx context.Context, req *pb.AbortRequest) (*pb.AbortResponse, error) {
	if err := f.failure(); err != nil {
		return nil, err
	}
	return f.fakeServer.Abort(ctx, req)
}

// fastRetry retries quickly, for tests.
func fastRetry() tokenwire.RetryPolicy {
	p := tokenwire.DefaultRetryPolicy()
	p.InitialBackoff, p.MaxBackoff = time.Millisecond, 4*time.Millisecond
	return p
}

// rejectStart fails Session starts as Generate calls fail.
func (f *flakyServer) rejectStart(req *pb.GenerateRequest, send func(*pb.SessionResponse) error) error {
	err := f.failure()
	if err != nil && f.afterStarted {
		_ = send(&pb.SessionResponse{RequestId: req.GetRequestId(), Event: &pb.SessionResponse_Started{Started: &pb.Started{}}})
	}
	return err
}

func flakyClient(t *testing.T, srv *flakyServer) *tokenwire.Client {
	t.Helper()
	srv.fakeServer.reject = srv.rejectStart
	client, err := tokenwire.Dial("passthrough:///bufnet", grpc.WithContextDialer(serveFake(t, srv)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	client.SetRetryPolicy(fastRetry())
	return client
}

func TestGenerateRetriesBeforeFirstEvent(t *testing.T) {
	for _, code := range []codes.Code{codes.Unavailable, codes.ResourceExhausted} {
		srv := &flakyServer{failures: 2, code: code}
		res, err := flakyClient(t, srv).Complete(testContext(t), tokenwire.TextRequest("a b"))
		if err != nil || res.Text != "a b " {
			t.Fatalf("%v: %+v, %v", code, res, err)
		}
		if n := srv.calls.Load(); n != 3 {
			t.Fatalf("%v: %d calls, want 3", code, n)
		}
	}
}

func TestGenerateGivesUpAfterMaxAttempts(t *testing.T) {
	srv := &flakyServer{failures: 100, code: codes.Unavailable}
	_, err := flakyClient(t, srv).Complete(testContext(t), tokenwire.TextRequest("a"))
	if status.Code(err) != codes.Unavailable || srv.calls.Load() != 4 {
		t.Fatalf("%v after %d calls, want UNAVAILABLE after 4", err, srv.calls.Load())
	}
}

func TestGenerateNotRetriedAfterFirstEvent(t *testing.T) {
	srv := &flakyServer{failures: 1, code: codes.Unavailable, afterStarted: true}
	_, err := flakyClient(t, srv).Complete(testContext(t), tokenwire.TextRequest("a"))
	if status.Code(err) != codes.Unavailable || srv.calls.Load() != 1 {
		t.Fatalf("%v after %d calls, want UNAVAILABLE after 1", err, srv.calls.Load())
	}
}

func TestNonRetryableCodeNotRetried(t *testing.T) {
	srv := &flakyServer{failures: 1, code: codes.Internal}
	_, err := flakyClient(t, srv).Complete(testContext(t), tokenwire.TextRequest("a"))
	if status.Code(err) != codes.Internal || srv.calls.Load() != 1 {
		t.Fatalf("%v after %d calls", err, srv.calls.Load())
	}
}

func TestRetryHonoursRetryInfo(t *testing.T) {
	srv := &flakyServer{failures: 1, code: codes.ResourceExhausted, retryDelay: 100 * time.Millisecond}
	start := time.Now()
	res, err := flakyClient(t, srv).Complete(testContext(t), tokenwire.TextRequest("a"))
	if err != nil || res.Text != "a " {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Fatalf("retried after %v, before the RetryInfo delay", waited)
	}
}

func TestRetryInfoAboveCapIsFinal(t *testing.T) {
	srv := &flakyServer{failures: 1, code: codes.Unavailable, retryDelay: time.Minute}
	start := time.Now()
	_, err := flakyClient(t, srv).Complete(testContext(t), tokenwire.TextRequest("a"))
	if status.Code(err) != codes.Unavailable || srv.calls.Load() != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("%v after %d calls", err, srv.calls.Load())
	}
	if d, ok := tokenwire.RetryDelay(err); !ok || d != time.Minute {
		t.Fatalf("RetryDelay = %v, %v", d, ok)
	}
}

func TestRetryNeverWaitsPastDeadline(t *testing.T) {
	srv := &flakyServer{failures: 1, code: codes.Unavailable, retryDelay: 2 * time.Second}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := flakyClient(t, srv).Complete(ctx, tokenwire.TextRequest("a"))
	if status.Code(err) != codes.Unavailable || time.Since(start) > 250*time.Millisecond || srv.calls.Load() != 1 {
		t.Fatalf("%v after %v and %d calls", err, time.Since(start), srv.calls.Load())
	}
}

func TestRetryPolicyPerCall(t *testing.T) {
	srv := &flakyServer{failures: 1, code: codes.Unavailable}
	client := flakyClient(t, srv)
	client.SetRetryPolicy(tokenwire.NoRetry())
	if _, err := client.Complete(testContext(t), tokenwire.TextRequest("a")); status.Code(err) != codes.Unavailable {
		t.Fatalf("client without retries: %v", err)
	}
	srv.calls.Store(0)
	res, err := client.Complete(testContext(t), tokenwire.TextRequest("a"), tokenwire.WithCallRetryPolicy(fastRetry()))
	if err != nil || res.Text != "a " || srv.calls.Load() != 2 {
		t.Fatalf("call with retries: %+v, %v, %d calls", res, err, srv.calls.Load())
	}
}

func TestUnaryRetries(t *testing.T) {
	srv := &flakyServer{failures: 2, code: codes.Unavailable}
	got, err := flakyClient(t, srv).Abort(testContext(t), "running")
	if err != nil || !got || srv.calls.Load() != 3 {
		t.Fatalf("Abort = %v, %v after %d calls", got, err, srv.calls.Load())
	}
}

func TestBackoffEqualJitter(t *testing.T) {
	p := tokenwire.DefaultRetryPolicy() // 200ms doubling, at most 5s
	for attempt, ceiling := range map[int]time.Duration{1: 200 * time.Millisecond, 2: 400 * time.Millisecond, 3: 800 * time.Millisecond, 10: 5 * time.Second} {
		for range 50 {
			if d := p.Backoff(attempt); d < ceiling/2 || d > ceiling {
				t.Fatalf("Backoff(%d) = %v, want in [%v, %v]", attempt, d, ceiling/2, ceiling)
			}
		}
	}
	if _, ok := p.Delay(4, status.Error(codes.Unavailable, "")); ok {
		t.Fatal("retry after the last attempt")
	}
	if _, ok := tokenwire.NoRetry().Delay(1, status.Error(codes.Unavailable, "")); ok {
		t.Fatal("NoRetry retries")
	}
}

func sessionCollect(t *testing.T, client *tokenwire.Client, prompt string, opts ...grpc.CallOption) (*tokenwire.Result, error) {
	t.Helper()
	session, err := client.OpenSession(testContext(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	gen, err := session.Start(tokenwire.TextRequest(prompt, tokenwire.WithRequestID("s")))
	if err != nil {
		t.Fatal(err)
	}
	return gen.Collect()
}

func TestSessionGenerationRetriedBeforeStart(t *testing.T) {
	srv := &flakyServer{failures: 2, code: codes.ResourceExhausted, retryDelay: 20 * time.Millisecond}
	res, err := sessionCollect(t, flakyClient(t, srv), "a b")
	if err != nil || res.Text != "a b " || srv.calls.Load() != 3 {
		t.Fatalf("%+v, %v after %d starts", res, err, srv.calls.Load())
	}
}

func TestSessionGenerationNotRetriedAfterStart(t *testing.T) {
	srv := &flakyServer{failures: 1, code: codes.Unavailable, afterStarted: true}
	_, err := sessionCollect(t, flakyClient(t, srv), "a")
	if status.Code(err) != codes.Unavailable || srv.calls.Load() != 1 {
		t.Fatalf("%v after %d starts", err, srv.calls.Load())
	}
}

func TestSessionGenerationRetryGivesUp(t *testing.T) {
	srv := &flakyServer{failures: 100, code: codes.Unavailable}
	client := flakyClient(t, srv)
	_, err := sessionCollect(t, client, "a")
	if status.Code(err) != codes.Unavailable || srv.calls.Load() != 4 {
		t.Fatalf("%v after %d starts, want 4", err, srv.calls.Load())
	}
	srv.calls.Store(0)
	_, err = sessionCollect(t, client, "a", tokenwire.WithCallRetryPolicy(tokenwire.NoRetry()))
	if status.Code(err) != codes.Unavailable || srv.calls.Load() != 1 {
		t.Fatalf("NoRetry: %v after %d starts", err, srv.calls.Load())
	}
}

// A generation cancelled while waiting to be started again is not.
func TestSessionGenerationCancelledDuringRetryWait(t *testing.T) {
	srv := &flakyServer{failures: 1, code: codes.Unavailable, retryDelay: 300 * time.Millisecond}
	client := flakyClient(t, srv)
	session, err := client.OpenSession(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	gen, err := session.Start(tokenwire.TextRequest("a", tokenwire.WithRequestID("c")))
	if err != nil {
		t.Fatal(err)
	}
	for srv.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the error event has arrived
	if err := gen.Cancel(); err != nil {
		t.Fatal(err)
	}
	if _, err := gen.Collect(); status.Code(err) != codes.Unavailable || srv.calls.Load() != 1 {
		t.Fatalf("%v after %d starts", err, srv.calls.Load())
	}
}

func TestStreamAttemptsCountsCalls(t *testing.T) {
	for _, tc := range []struct {
		failures     int32
		afterStarted bool
		want         int
		ok           bool
	}{
		{failures: 0, want: 1, ok: true},
		{failures: 2, want: 3, ok: true},
		{failures: 1, afterStarted: true, want: 1}, // not retried after an event
	} {
		srv := &flakyServer{failures: tc.failures, code: codes.ResourceExhausted, afterStarted: tc.afterStarted}
		stream, err := flakyClient(t, srv).Generate(testContext(t), tokenwire.TextRequest("a b"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = stream.Collect()
		stream.Close()
		if (err == nil) != tc.ok {
			t.Fatalf("%+v: Collect: %v", tc, err)
		}
		if got := stream.Attempts(); got != tc.want || got != int(srv.calls.Load()) {
			t.Fatalf("%+v: Attempts() = %d after %d calls, want %d", tc, got, srv.calls.Load(), tc.want)
		}
	}
}

func TestGenerationAttemptsCountsStarts(t *testing.T) {
	srv := &flakyServer{failures: 2, code: codes.Unavailable, retryDelay: 10 * time.Millisecond}
	session, err := flakyClient(t, srv).OpenSession(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	gen, err := session.Start(tokenwire.TextRequest("a", tokenwire.WithRequestID("n")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gen.Collect(); err != nil {
		t.Fatal(err)
	}
	if got := gen.Attempts(); got != 3 || srv.calls.Load() != 3 {
		t.Fatalf("Attempts() = %d after %d starts, want 3", got, srv.calls.Load())
	}
}
