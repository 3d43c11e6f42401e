package tokenwire_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokenwire/tokenwire/clients/go/tokenwire"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func detailedError(t *testing.T) error {
	t.Helper()
	st, err := status.New(codes.ResourceExhausted, "queue full").WithDetails(
		&errdetails.ErrorInfo{Reason: "ENGINE_QUEUE_FULL", Domain: "tokenwire", Metadata: map[string]string{"queue": "8"}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "sampling.top_p", Description: "must be in (0, 1]"},
			{Field: "stopping.max_tokens", Description: "too large"},
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

func TestErrorDetails(t *testing.T) {
	for name, err := range map[string]error{
		"plain":   detailedError(t),
		"wrapped": fmt.Errorf("calling: %w", detailedError(t)),
	} {
		t.Run(name, func(t *testing.T) {
			if d, ok := tokenwire.RetryDelay(err); !ok || d != 1500*time.Millisecond {
				t.Fatalf("RetryDelay = %v, %v", d, ok)
			}
			if r := tokenwire.ErrorReason(err); r != "ENGINE_QUEUE_FULL" {
				t.Fatalf("ErrorReason = %q", r)
			}
			if info := tokenwire.ErrorInfo(err); info.GetDomain() != "tokenwire" || info.GetMetadata()["queue"] != "8" {
				t.Fatalf("ErrorInfo = %v", info)
			}
			fv := tokenwire.FieldViolations(err)
			if len(fv) != 2 || fv[0].GetField() != "sampling.top_p" || fv[1].GetDescription() != "too large" {
				t.Fatalf("FieldViolations = %v", fv)
			}
		})
	}
}

func TestErrorDetailsAbsent(t *testing.T) {
	for _, err := range []error{nil, errors.New("not grpc"), status.Error(codes.Internal, "no details")} {
		if _, ok := tokenwire.RetryDelay(err); ok {
			t.Fatalf("RetryDelay(%v) said", err)
		}
		if tokenwire.ErrorReason(err) != "" || tokenwire.ErrorInfo(err) != nil || tokenwire.FieldViolations(err) != nil {
			t.Fatalf("details of %v", err)
		}
	}
}

// Details survive the trip through a server and through a Session's error
// event.
func TestErrorDetailsFromServer(t *testing.T) {
	client := newClient(t)
	_, err := client.Complete(testContext(t), tokenwire.TextRequest("fail"))
	if fv := tokenwire.FieldViolations(err); status.Code(err) != codes.InvalidArgument || len(fv) != 1 || fv[0].GetField() != "text" {
		t.Fatalf("Generate: %v, violations %v", err, fv)
	}
	session, err := client.OpenSession(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	gen, err := session.Start(tokenwire.TextRequest("fail", tokenwire.WithRequestID("f")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = gen.Collect()
	if fv := tokenwire.FieldViolations(err); status.Code(err) != codes.InvalidArgument || len(fv) != 1 || fv[0].GetField() != "text" {
		t.Fatalf("Session: %v, violations %v", err, fv)
	}
}
