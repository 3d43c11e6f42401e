package tokenwire

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RetryPolicy says when and how long to wait before retrying a call that
// failed with a retryable code (by default UNAVAILABLE and
// RESOURCE_EXHAUSTED), as the Python client does.
//
// A call is retried only while nothing of it was received: a Generate stream
// or Session generation is re-sent only if it failed before its first event
// (one that delivered an event is never replayed), and a unary call (Abort, ModelInfo, Load,
// Tokenize, Detokenize) whenever it failed. There are at most MaxAttempts
// attempts in all, and no retry waits past the context's deadline (the error
// is returned instead). The wait is the server's google.rpc.RetryInfo delay
// when it sent one (a delay above MaxRetryInfoDelay is not waited for: the
// error is returned); otherwise exponential backoff with "equal jitter": the
// wait after attempt n is uniform between b/2 and b, where
// b = min(MaxBackoff, InitialBackoff * Multiplier^(n-1)).
//
// A Session generation whose error event arrives before any other event of
// it is started again on the same stream, unless it was cancelled or the
// session half-closed meanwhile (see [Client.OpenSession]).
type RetryPolicy struct {
	MaxAttempts       int           // attempts in all, the first included; 1 or less: no retries
	InitialBackoff    time.Duration // backoff ceiling after the first attempt
	MaxBackoff        time.Duration // largest backoff ceiling
	Multiplier        float64       // growth of the ceiling per attempt (less than 1 counts as 1)
	MaxRetryInfoDelay time.Duration // largest RetryInfo delay waited for
	RetryableCodes    []codes.Code  // nil: UNAVAILABLE and RESOURCE_EXHAUSTED
}

// DefaultRetryPolicy is the policy of a client that sets none: 4 attempts,
// backoff from 200ms up to 5s doubling each time, RetryInfo delays up to 30s,
// UNAVAILABLE and RESOURCE_EXHAUSTED retried.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxAttempts:       4,
		InitialBackoff:    200 * time.Millisecond,
		MaxBackoff:        5 * time.Second,
		Multiplier:        2,
		MaxRetryInfoDelay: 30 * time.Second,
		RetryableCodes:    []codes.Code{codes.Unavailable, codes.ResourceExhausted},
	}
}

// NoRetry is a policy that never retries.
func NoRetry() RetryPolicy { return RetryPolicy{MaxAttempts: 1} }

// Backoff returns the jittered wait after failed attempt number attempt
// (1-based) when the server sent no RetryInfo: uniform in [b/2, b], where
// b = min(MaxBackoff, InitialBackoff * Multiplier^(attempt-1)).
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	mult := max(p.Multiplier, 1)
	ceiling := float64(p.InitialBackoff)
	for i := 1; i < attempt && ceiling < float64(p.MaxBackoff); i++ {
		ceiling *= mult
	}
	ceiling = min(ceiling, float64(p.MaxBackoff))
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(ceiling/2 + rand.Float64()*ceiling/2)
}

// Delay returns the wait before the attempt after attempt number attempt
// (1-based) that failed with err, and false when err is final: its code is
// not retryable, the attempts are used up, or its RetryInfo delay is above
// MaxRetryInfoDelay.
func (p RetryPolicy) Delay(attempt int, err error) (time.Duration, bool) {
	if attempt >= p.MaxAttempts || !p.retryable(status.Code(err)) {
		return 0, false
	}
	if d, ok := RetryDelay(err); ok {
		if d > p.MaxRetryInfoDelay {
			return 0, false
		}
		return max(d, 0), true
	}
	return p.Backoff(attempt), true
}

func (p RetryPolicy) retryable(code codes.Code) bool {
	if p.RetryableCodes == nil {
		return code == codes.Unavailable || code == codes.ResourceExhausted
	}
	return slices.Contains(p.RetryableCodes, code)
}

// wait sleeps before the next attempt and returns nil, or returns the error
// to give the caller: err when it is final or the wait would pass ctx's
// deadline, the context's status error when ctx ends while waiting.
func (p RetryPolicy) wait(ctx context.Context, attempt int, err error) error {
	d, ok := p.Delay(attempt, err)
	if !ok {
		return err
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= d {
		return err
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-timer.C:
		return nil
	}
}

// retryOption carries a per-call RetryPolicy among grpc.CallOptions; gRPC
// itself ignores it.
type retryOption struct {
	grpc.EmptyCallOption
	policy RetryPolicy
}

// WithCallRetryPolicy sets the retry policy of one call, in place of the
// client's: pass it among the call options of Generate, Complete,
// CompleteSamples, OpenSession (for its generations), Abort, ModelInfo, Load,
// Tokenize, TokenizeChat or Detokenize, e.g.
// WithCallRetryPolicy(NoRetry()).
func WithCallRetryPolicy(p RetryPolicy) grpc.CallOption { return retryOption{policy: p} }

// WithRetryPolicy sets the retry policy of the client [Connect] returns
// (the default is [DefaultRetryPolicy]).
func WithRetryPolicy(p RetryPolicy) ConnectOption {
	return func(c *connectConfig) { c.retry = &p }
}

// SetRetryPolicy sets the client's retry policy (the default is
// [DefaultRetryPolicy]); [NoRetry] turns retries off. Call it before the
// client is in use.
func (c *Client) SetRetryPolicy(p RetryPolicy) { c.retry = &p }

// retryPolicy is the policy of a call with these options.
func (c *Client) retryPolicy(opts []grpc.CallOption) RetryPolicy {
	for i := len(opts) - 1; i >= 0; i-- {
		if r, ok := opts[i].(retryOption); ok {
			return r.policy
		}
	}
	if c.retry != nil {
		return *c.retry
	}
	return DefaultRetryPolicy()
}

// unary runs call, retried per the call's policy.
func unary[T any](ctx context.Context, c *Client, opts []grpc.CallOption, call func() (T, error)) (T, error) {
	policy := c.retryPolicy(opts)
	for attempt := 1; ; attempt++ {
		resp, err := call()
		if err == nil {
			return resp, nil
		}
		if err = policy.wait(ctx, attempt, err); err != nil {
			return resp, err
		}
	}
}
