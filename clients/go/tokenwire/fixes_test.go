package tokenwire_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
	"github.com/tokenwire/tokenwire/clients/go/tokenwire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// After CloseSend the stream can carry no SessionCancel: Cancel falls back to
// the Abort RPC with the request id, and the generation still ends cancelled.
func TestSessionCancelAfterCloseSendAborts(t *testing.T) {
	client, running := newClientServer(t)
	session, err := client.OpenSession(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	gen, err := session.Start(tokenwire.TextRequest("forever", tokenwire.WithRequestID("late-cancel")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gen.Recv(testContext(t)); err != nil { // started: the server has it
		t.Fatal(err)
	}
	if err := session.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := gen.Cancel(); err != nil {
		t.Fatalf("Cancel after CloseSend: %v", err)
	}
	res, err := gen.Collect()
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason() != pb.FinishReason_FINISH_REASON_CANCELLED {
		t.Fatalf("reason %v", res.Reason())
	}
	if got := running.aborted(); !slices.Equal(got, []string{"late-cancel"}) {
		t.Fatalf("Abort calls %v", got)
	}
	if err := session.Wait(); err != nil {
		t.Fatalf("session ended with %v", err)
	}
}

// tokenCreds adds a header on every call, over plaintext.
type tokenCreds struct{}

func (tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"x-test": "yes"}, nil
}

func (tokenCreds) RequireTransportSecurity() bool { return false }

// headerServer answers Abort with whether the x-test header arrived.
type headerServer struct{ fakeServer }

func (headerServer) Abort(ctx context.Context, _ *pb.AbortRequest) (*pb.AbortResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	return &pb.AbortResponse{Cancelled: slices.Equal(md.Get("x-test"), []string{"yes"})}, nil
}

// Dial keeps its plaintext default when given options that set no transport
// credentials.
func TestDialKeepsPlaintextDefaultWithOptions(t *testing.T) {
	dialer := serveFake(t, headerServer{})
	client, err := tokenwire.Dial("passthrough:///bufnet", grpc.WithContextDialer(dialer), grpc.WithPerRPCCredentials(tokenCreds{}))
	if err != nil {
		t.Fatalf("Dial with options but no transport credentials: %v", err)
	}
	defer client.Close()
	got, err := client.Abort(testContext(t), "x")
	if err != nil || !got {
		t.Fatalf("Abort = %v, %v (want the header to arrive)", got, err)
	}
}

// A credentials bundle among the options replaces the default too.
func TestDialWithCredentialsBundle(t *testing.T) {
	dialer := serveFake(t, fakeServer{})
	client, err := tokenwire.Dial("passthrough:///bufnet", grpc.WithContextDialer(dialer), grpc.WithCredentialsBundle(insecure.NewBundle()))
	if err != nil {
		t.Fatalf("Dial with a credentials bundle: %v", err)
	}
	defer client.Close()
	if got, err := client.Abort(testContext(t), "running"); err != nil || !got {
		t.Fatalf("Abort = %v, %v", got, err)
	}
}

// Generation.Recv gives up when its context is done, without losing events.
func TestGenerationRecvContext(t *testing.T) {
	client := newClient(t)
	session, err := client.OpenSession(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	gen, err := session.Start(tokenwire.TextRequest("forever", tokenwire.WithRequestID("slow")))
	if err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(t.Context())
	cancel()
	// Drain what has arrived; with a done context Recv returns as soon as the
	// queue is empty.
	for {
		if _, err := gen.Recv(done); err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("want context.Canceled, got %v", err)
			}
			break
		}
	}
	short, cancelShort := context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancelShort()
	<-short.Done()
	if _, err := gen.Recv(short); !errors.Is(err, context.DeadlineExceeded) && err != nil {
		t.Fatalf("want context.DeadlineExceeded or an event, got %v", err)
	}
	// The generation went on: cancel it and read it to its end.
	if err := gen.Cancel(); err != nil {
		t.Fatal(err)
	}
	res, err := gen.Collect()
	if err != nil || res.Reason() != pb.FinishReason_FINISH_REASON_CANCELLED {
		t.Fatalf("%+v, %v", res, err)
	}
}
