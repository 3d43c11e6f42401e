// Command samples asks for three samples of one prompt (n = 3) on one
// Generate stream and prints one line per sample, in sample index order:
//
//	<sample_index> <FINISH_REASON_NAME> <completion_tokens> <text-as-JSON-string>
//
// then one line comparing the prompt's tokens as Started reports them with
// the sum of usage.prompt_tokens over the samples' finished events (the
// prompt is counted once, in the first finished event to arrive):
//
//	prompt_tokens <Started.prompt_tokens> <sum over the finished events>
//
// The chat user message is "Name a colour and say why you like it.",
// temperature 1.0, seed 7 (sample i draws with seed 7 + i), at most 16 tokens
// each. Run it with TOKENWIRE_TARGET=host:port (default 127.0.0.1:50051), and
// TLS and token settings as for the stream example. A failure is reported on
// stderr as "error: ..." with exit status 1.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
	"github.com/tokenwire/tokenwire/clients/go/tokenwire"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("error: ")

	client, err := tokenwire.Connect(target(), tokenwire.ConnectOptionsFromEnv()...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// The gRPC deadline for the whole call.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	req := tokenwire.ChatRequest(
		[]*pb.ChatMessage{tokenwire.User("Name a colour and say why you like it.")},
		tokenwire.WithN(3),
		tokenwire.WithTemperature(1.0),
		tokenwire.WithSeed(7),
		tokenwire.WithMaxTokens(16),
	)
	// One stream carries the deltas of all three samples interleaved and ends
	// after the third finished event; CompleteSamples sorts them out into one
	// Result per sample, indexed by sample index.
	results, err := client.CompleteSamples(ctx, req)
	if err != nil {
		log.Fatal(err)
	}

	var promptTokens uint32
	for _, r := range results {
		fmt.Printf("%d %s %d %s\n", r.SampleIndex, r.Reason(), r.CompletionTokens(), jsonString(r.Text))
		promptTokens += r.Finished.GetUsage().GetPromptTokens()
	}
	fmt.Printf("prompt_tokens %d %d\n", results[0].Started.GetPromptTokens(), promptTokens)
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
