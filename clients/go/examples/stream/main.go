// Command stream streams one completion to stdout.
//
//	TOKENWIRE_TARGET=127.0.0.1:50051 go run ./examples/stream "What is the capital of France?"
//
// The prompt (default: "What is the capital of France?") is sent as a chat
// user message, decoded greedily, at most 32 tokens.
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

func main() {
	log.SetFlags(0)
	log.SetPrefix("stream: ")
	prompt := "What is the capital of France?"
	if len(os.Args) > 1 {
		prompt = strings.Join(os.Args[1:], " ")
	}

	client, err := tokenwire.Dial(target())
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
		tokenwire.WithMaxTokens(32),
	)
	stream, err := client.Generate(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	for ev, err := range stream.Events() {
		if err != nil {
			log.Fatal(err)
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

func target() string {
	if t := os.Getenv("TOKENWIRE_TARGET"); t != "" {
		return t
	}
	return "127.0.0.1:50051"
}
