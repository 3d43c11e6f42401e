// Command session runs two generations on one Session stream, cancels one of
// them after its first delta, and prints one line per generation:
//
//	<request_id> <FINISH_REASON_NAME> <completion_tokens> <text-as-JSON-string>
//
// Run it with TOKENWIRE_TARGET=host:port (default 127.0.0.1:50051), and for
// a server with TLS or token auth TOKENWIRE_TLS_CA, TOKENWIRE_CLIENT_CERT,
// TOKENWIRE_CLIENT_KEY and TOKENWIRE_TOKEN as for the stream example.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tokenwire/tokenwire/clients/go/tokenwire"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("session: ")

	client, err := tokenwire.Connect(target(), tokenwire.ConnectOptionsFromEnv()...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// The gRPC deadline for the whole stream.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	session, err := client.OpenSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()

	keep, err := session.Start(tokenwire.TextRequest("The sky is",
		tokenwire.WithRequestID("keep"), tokenwire.Greedy(), tokenwire.WithMaxTokens(12)))
	if err != nil {
		log.Fatal(err)
	}
	// ignore_eos and a longer budget keep "drop" running until it is cancelled.
	drop, err := session.Start(tokenwire.TextRequest("Once upon a time",
		tokenwire.WithRequestID("drop"), tokenwire.Greedy(), tokenwire.WithMaxTokens(32), tokenwire.WithIgnoreEOS()))
	if err != nil {
		log.Fatal(err)
	}

	results := make([]*tokenwire.Result, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { results[0], errs[0] = keep.Collect() })
	wg.Go(func() {
		var r tokenwire.Result
		cancelled := false
		for ev, err := range drop.Events() {
			if err != nil {
				errs[1] = err
				break
			}
			r.Add(ev)
			if ev.Delta != nil && !cancelled {
				cancelled = true
				if err := drop.Cancel(); err != nil {
					errs[1] = err
					break
				}
			}
		}
		results[1] = &r
	})
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			log.Fatalf("%s: %v", []string{"keep", "drop"}[i], err)
		}
	}

	// No more requests: the server then ends the stream with OK.
	if err := session.CloseSend(); err != nil {
		log.Fatal(err)
	}
	if err := session.Wait(); err != nil {
		log.Fatal(err)
	}

	for _, r := range results {
		fmt.Printf("%s %s %d %s\n", r.RequestID, r.Reason(), r.CompletionTokens(), jsonString(r.Text))
	}
}

// jsonString renders s as a JSON string literal, without HTML escaping.
func jsonString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		log.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func target() string {
	if t := os.Getenv(tokenwire.EnvTarget); t != "" {
		return t
	}
	return "127.0.0.1:50051"
}
