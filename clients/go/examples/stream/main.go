// Command stream streams one completion to stdout.
//
//	TOKENWIRE_TARGET=127.0.0.1:50051 go run ./examples/stream "What is the capital of France?"
//
// The prompt (default: "What is the capital of France?") is sent as a chat
// user message, decoded greedily, at most 32 tokens.
//
// For a server with TLS or token auth set TOKENWIRE_TLS_CA (a PEM CA bundle;
// setting it turns TLS on), TOKENWIRE_CLIENT_CERT and TOKENWIRE_CLIENT_KEY (a
// client certificate for mTLS) and TOKENWIRE_TOKEN (a bearer token). A
// failed call is reported on stderr as "stream: <CODE>: <message>" (for
// example UNAUTHENTICATED) with exit status 1.
//
// To continue a trace, set TOKENWIRE_TRACEPARENT to a W3C traceparent: it goes
// out as the call's "traceparent" metadata, and the server's span is its
// child. (An OpenTelemetry app would use the otelgrpc client handler, or
// otel.GetTextMapPropagator().Inject into the outgoing metadata, instead.)
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"time"
	"unicode"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
	"github.com/tokenwire/tokenwire/clients/go/tokenwire"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("stream: ")
	prompt := "What is the capital of France?"
	if len(os.Args) > 1 {
		prompt = strings.Join(os.Args[1:], " ")
	}

	client, err := tokenwire.Connect(target(), tokenwire.ConnectOptionsFromEnv()...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// The gRPC deadline for the whole call.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	if traceparent := os.Getenv("TOKENWIRE_TRACEPARENT"); traceparent != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", traceparent)
	}
	defer cancel()

	req := tokenwire.ChatRequest(
		[]*pb.ChatMessage{tokenwire.User(prompt)},
		tokenwire.Greedy(),
		tokenwire.WithMaxTokens(32),
	)
	stream, err := client.Generate(ctx, req)
	if err != nil {
		fail(err)
	}
	defer stream.Close()
	for ev, err := range stream.Events() {
		if err != nil {
			fail(err)
		}
		switch {
		case ev.Delta != nil:
			fmt.Print(ev.Delta.GetText())
		case ev.Finished != nil:
			fmt.Println()
			log.Printf("%s: %s, %d tokens", ev.RequestID, ev.Finished.GetReason(), ev.Finished.GetUsage().GetCompletionTokens())
		}
	}
}

// fail reports a failed call with its canonical status code name, e.g.
// "PERMISSION_DENIED: ...", and exits.
func fail(err error) {
	st, ok := status.FromError(err)
	if !ok {
		log.Fatal(err)
	}
	log.Fatalf("%s: %s", codeName(st.Code().String()), st.Message())
}

// codeName turns grpc-go's "PermissionDenied" into the canonical "PERMISSION_DENIED".
func codeName(camel string) string {
	var b strings.Builder
	for i, r := range camel {
		if i > 0 && unicode.IsUpper(r) && !unicode.IsUpper(rune(camel[i-1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

func target() string {
	if t := os.Getenv(tokenwire.EnvTarget); t != "" {
		return t
	}
	return "127.0.0.1:50051"
}
