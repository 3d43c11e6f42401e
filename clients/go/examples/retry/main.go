// Command retry shows the client's retries and the error details it decodes.
//
//	TOKENWIRE_TARGET=127.0.0.1:50051 go run ./examples/retry
//
// With a retry policy of up to 10 attempts (UNAVAILABLE and
// RESOURCE_EXHAUSTED retried before the first event, waiting the server's
// google.rpc.RetryInfo delay when it sends one), it generates from the text
// prompt "Hello" (at most 8 tokens), reads the stream to its end and prints
//
//	attempts <calls made for it: 1, plus one per retry>
//	completion_tokens <the finished event's usage.completion_tokens>
//
// Then it sends a request with sampling.top_p = 5, which the server refuses
// with INVALID_ARGUMENT, and prints one line per google.rpc.BadRequest field
// violation of that error:
//
//	violation <field> <description>
//
// Against a busy server (all slots taken, no queue) the first Generate is
// refused with RESOURCE_EXHAUSTED and a retry succeeds once a slot is free.
// TLS and token settings come from TOKENWIRE_TLS_CA, TOKENWIRE_CLIENT_CERT,
// TOKENWIRE_CLIENT_KEY and TOKENWIRE_TOKEN as for the stream example. Any
// other failure (a call that still fails, top_p = 5 accepted, an error other
// than INVALID_ARGUMENT or one without field violations) is reported on
// stderr as "error: ..." with exit status 1.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tokenwire/tokenwire/clients/go/tokenwire"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	policy := tokenwire.DefaultRetryPolicy() // honours RetryInfo delays up to 30s
	policy.MaxAttempts = 10
	opts := append(tokenwire.ConnectOptionsFromEnv(), tokenwire.WithRetryPolicy(policy))
	client, err := tokenwire.Connect(target(), opts...)
	if err != nil {
		return err
	}
	defer client.Close()

	// The gRPC deadline for everything, retries and their waits included.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// 1. A short generation, retried (before its first event only) while the
	// server is busy.
	stream, err := client.Generate(ctx, tokenwire.TextRequest("Hello", tokenwire.WithMaxTokens(8)))
	if err != nil {
		return err
	}
	res, err := stream.Collect()
	stream.Close()
	if err != nil {
		return fmt.Errorf("generate after %d attempt(s): %w", stream.Attempts(), err)
	}
	fmt.Println("attempts", stream.Attempts())
	fmt.Println("completion_tokens", res.CompletionTokens())

	// 2. An invalid request: the field violations of its INVALID_ARGUMENT.
	_, err = client.Complete(ctx, tokenwire.TextRequest("Hello", tokenwire.WithTopP(5), tokenwire.WithMaxTokens(8)))
	switch {
	case err == nil:
		return errors.New("top_p = 5 was accepted")
	case status.Code(err) != codes.InvalidArgument:
		return fmt.Errorf("top_p = 5: want INVALID_ARGUMENT, got %w", err)
	}
	violations := tokenwire.FieldViolations(err)
	if len(violations) == 0 {
		return fmt.Errorf("top_p = 5: INVALID_ARGUMENT without field violations: %w", err)
	}
	for _, v := range violations {
		fmt.Println("violation", v.GetField(), v.GetDescription())
	}
	return nil
}

func target() string {
	if t := os.Getenv(tokenwire.EnvTarget); t != "" {
		return t
	}
	return "127.0.0.1:50051"
}
