// Command structured asks for JSON that follows a JSON Schema and prints two
// lines: the output text (the JSON the deltas make up) and the finish
// reason's proto enum name, e.g. FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE.
//
//	TOKENWIRE_TARGET=127.0.0.1:50051 go run ./examples/structured
//
// The chat user message is "Ada Lovelace was born in 1815 in London. Extract
// the person as JSON.", decoded greedily, at most 64 tokens. TLS and token
// settings come from TOKENWIRE_TLS_CA, TOKENWIRE_CLIENT_CERT,
// TOKENWIRE_CLIENT_KEY and TOKENWIRE_TOKEN as for the stream example. A
// failure is reported on stderr as "error: ..." with exit status 1.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
	"github.com/tokenwire/tokenwire/clients/go/tokenwire"
)

const prompt = "Ada Lovelace was born in 1815 in London. Extract the person as JSON."

// schema is the JSON Schema the output must validate against, as JSON text.
// (json.Marshal of a Go value works as well, but sorts a map's keys: the
// properties' order here is the order the model is asked to write them in.)
const schema = `{"type": "object", "properties": {"name": {"type": "string", "maxLength": 40}, ` +
	`"birth_year": {"type": "integer", "minimum": 1000, "maximum": 2100}, ` +
	`"city": {"type": "string", "maxLength": 40}}, ` +
	`"required": ["name", "birth_year", "city"], "additionalProperties": false}`

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
		[]*pb.ChatMessage{tokenwire.User(prompt)},
		tokenwire.Greedy(),
		tokenwire.WithMaxTokens(64),
		tokenwire.WithJSONSchema(schema),
	)
	stream, err := client.Generate(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()

	var text strings.Builder
	var reason pb.FinishReason
	for ev, err := range stream.Events() {
		if err != nil {
			log.Fatal(err) // a gRPC status error, e.g. INVALID_ARGUMENT for a schema that does not compile
		}
		switch {
		case ev.Delta != nil:
			text.WriteString(ev.Delta.GetText())
		case ev.Finished != nil:
			reason = ev.Finished.GetReason()
		}
	}
	fmt.Println(text.String())
	fmt.Println(reason) // the enum's String() is its proto name
}

func target() string {
	if t := os.Getenv(tokenwire.EnvTarget); t != "" {
		return t
	}
	return "127.0.0.1:50051"
}
