package tokenwire

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// The server attaches google.rpc error details to its status errors:
// BadRequest field violations to INVALID_ARGUMENT, RetryInfo to
// RESOURCE_EXHAUSTED and UNAVAILABLE, and ErrorInfo with a machine-readable
// reason (such as ENGINE_QUEUE_FULL or READER_STALLED). These functions decode
// them from any error that carries a gRPC status (also when wrapped, and
// for a Session generation's error event); for other errors, or when the
// detail is absent, they return the zero value.

// FieldViolations returns the google.rpc.BadRequest field violations of err:
// one per bad request field, each with the field's path and a description.
func FieldViolations(err error) []*errdetails.BadRequest_FieldViolation {
	var out []*errdetails.BadRequest_FieldViolation
	for _, d := range details(err) {
		if br, ok := d.(*errdetails.BadRequest); ok {
			out = append(out, br.GetFieldViolations()...)
		}
	}
	return out
}

// RetryDelay returns how long the server asked the caller to wait before
// retrying (google.rpc.RetryInfo), and whether it said.
func RetryDelay(err error) (time.Duration, bool) {
	for _, d := range details(err) {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// ErrorInfo returns the google.rpc.ErrorInfo of err (reason, domain and
// metadata), or nil.
func ErrorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range details(err) {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei
		}
	}
	return nil
}

// ErrorReason returns the reason of err's google.rpc.ErrorInfo (e.g.
// "ENGINE_QUEUE_FULL"), or "".
func ErrorReason(err error) string { return ErrorInfo(err).GetReason() }

func details(err error) []any {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	return st.Details()
}
