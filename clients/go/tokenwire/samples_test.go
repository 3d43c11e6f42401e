package tokenwire_test

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
	"github.com/tokenwire/tokenwire/clients/go/tokenwire"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// runSamples serves a request for n > 1 samples of the fake server: sample i
// says the prompt's first len(words) - i words, each followed by i ("a1 b1 "),
// one delta per word with the samples interleaved (the highest index first
// at each step), and finishes right after its last word, so the samples end
// in reverse order while the others still stream. The first finished event to
// arrive carries usage.prompt_tokens (the number of words), the others 0. A
// prompt starting with "unfinished" ends the stream (OK) after the first
// finished event.
func runSamples(req *pb.GenerateRequest, ws []string, send func(*pb.SessionResponse) error) error {
	id, n := req.GetRequestId(), int(req.GetN())
	if n > len(ws) {
		return status.Error(codes.InvalidArgument, "fake: n must not exceed the number of words")
	}
	started := &pb.Started{Model: "fake", PromptTokens: uint32(len(ws))}
	if err := send(&pb.SessionResponse{RequestId: id, Event: &pb.SessionResponse_Started{Started: started}}); err != nil {
		return err
	}
	promptTokens := uint32(len(ws))
	for step := 0; step <= len(ws); step++ {
		for i := n - 1; i >= 0; i-- {
			length := len(ws) - i
			switch {
			case step < length:
				delta := &pb.Delta{Text: fmt.Sprintf("%s%d ", ws[step], i), TokenIds: []uint32{uint32(step)}, SampleIndex: uint32(i)}
				if err := send(&pb.SessionResponse{RequestId: id, Event: &pb.SessionResponse_Delta{Delta: delta}}); err != nil {
					return err
				}
			case step == length:
				usage := &pb.Usage{PromptTokens: promptTokens, CompletionTokens: uint32(length)}
				promptTokens = 0
				fin := &pb.Finished{Reason: pb.FinishReason_FINISH_REASON_LENGTH, Usage: usage, SampleIndex: uint32(i)}
				if err := send(&pb.SessionResponse{RequestId: id, Event: &pb.SessionResponse_Finished{Finished: fin}}); err != nil {
					return err
				}
				if ws[0] == "unfinished" {
					return nil
				}
			}
		}
	}
	return nil
}

// checkSamples checks the CollectSamples results of "a b c d" with n = 3.
func checkSamples(t *testing.T, results []*tokenwire.Result, requestID string) {
	t.Helper()
	want := []string{"a0 b0 c0 d0 ", "a1 b1 c1 ", "a2 b2 "}
	if len(results) != len(want) {
		t.Fatalf("%d results, want %d", len(results), len(want))
	}
	var promptTokens uint32
	for i, r := range results {
		if r.SampleIndex != uint32(i) || r.Finished.GetSampleIndex() != uint32(i) || r.Text != want[i] ||
			r.Reason() != pb.FinishReason_FINISH_REASON_LENGTH || r.CompletionTokens() != uint32(4-i) ||
			len(r.TokenIDs) != 4-i || r.RequestID != requestID || r.Started.GetPromptTokens() != 4 {
			t.Fatalf("sample %d: %+v", i, r)
		}
		promptTokens += r.Finished.GetUsage().GetPromptTokens()
	}
	// Sample 2 finished first and carries the prompt's tokens.
	if promptTokens != 4 || results[2].Finished.GetUsage().GetPromptTokens() != 4 {
		t.Fatalf("prompt tokens summed to %d", promptTokens)
	}
}

func TestStreamReadsEverySamplesFinished(t *testing.T) {
	client := newClient(t)
	stream, err := client.Generate(testContext(t), tokenwire.TextRequest("a b c d", tokenwire.WithN(3)))
	if err != nil {
		t.Fatal(err)
	}
	var finished []uint32
	deltasAfterFirstFinished := 0
	for ev, err := range stream.Events() {
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.Started != nil:
			if ev.SampleIndex() != 0 {
				t.Fatalf("started has sample index %d", ev.SampleIndex())
			}
		case ev.Delta != nil:
			if ev.SampleIndex() != ev.Delta.GetSampleIndex() {
				t.Fatal("Event.SampleIndex of a delta")
			}
			if len(finished) > 0 {
				deltasAfterFirstFinished++
			}
		case ev.Finished != nil:
			finished = append(finished, ev.SampleIndex())
		}
	}
	if !slices.Equal(finished, []uint32{2, 1, 0}) || deltasAfterFirstFinished == 0 {
		t.Fatalf("finished %v, %d deltas after the first", finished, deltasAfterFirstFinished)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last finished: %v", err)
	}
}

func TestCollectSamples(t *testing.T) {
	client := newClient(t)
	req := tokenwire.TextRequest("a b c d", tokenwire.WithN(3), tokenwire.WithRequestID("s"))

	// The one-Result helpers refuse n > 1 without reading or sending anything.
	if res, err := client.Complete(testContext(t), req); !errors.Is(err, tokenwire.ErrMultipleSamples) || res != nil {
		t.Fatalf("Complete with n = 3: %v, %v", res, err)
	}
	stream, err := client.Generate(testContext(t), req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if _, err := stream.Collect(); !errors.Is(err, tokenwire.ErrMultipleSamples) {
		t.Fatalf("Collect with n = 3: %v", err)
	}
	results, err := stream.CollectSamples()
	if err != nil {
		t.Fatal(err)
	}
	checkSamples(t, results, "s")

	results, err = client.CompleteSamples(testContext(t), req)
	if err != nil {
		t.Fatal(err)
	}
	checkSamples(t, results, "s")

	// Without n, CollectSamples gives the one completion.
	results, err = client.CompleteSamples(testContext(t), tokenwire.TextRequest("x y"))
	if err != nil || len(results) != 1 || results[0].Text != "x y " || results[0].Reason() != pb.FinishReason_FINISH_REASON_LENGTH {
		t.Fatalf("n absent: %v, %v", results, err)
	}
	// n = 1 is one sample too: Collect works.
	if res, err := client.Complete(testContext(t), tokenwire.TextRequest("x y", tokenwire.WithN(1))); err != nil || res.Text != "x y " {
		t.Fatalf("n = 1: %v, %v", res, err)
	}
}

func TestSamplesStreamEndedBeforeEverySampleFinished(t *testing.T) {
	client := newClient(t)
	req := tokenwire.TextRequest("unfinished a b c", tokenwire.WithN(3))
	stream, err := client.Generate(testContext(t), req)
	if err != nil {
		t.Fatal(err)
	}
	finished := 0
	var last error
	for ev, err := range stream.Events() {
		if ev.Finished != nil {
			finished++
		}
		last = err
	}
	if finished != 1 || !errors.Is(last, io.ErrUnexpectedEOF) {
		t.Fatalf("%d finished, then %v", finished, last)
	}

	results, err := client.CompleteSamples(testContext(t), req)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(results) != 3 || results[2].Finished == nil || results[0].Finished != nil {
		t.Fatalf("CompleteSamples: %v, %v", results, err)
	}
}

func TestResultAddKeepsItsOwnSample(t *testing.T) {
	started := tokenwire.Event{RequestID: "r", Started: &pb.Started{PromptTokens: 2}}
	events := []tokenwire.Event{
		started,
		{RequestID: "r", Delta: &pb.Delta{Text: "a", SampleIndex: 0}},
		{RequestID: "r", Delta: &pb.Delta{Text: "b", SampleIndex: 1}},
		{RequestID: "r", Finished: &pb.Finished{SampleIndex: 1}},
		{RequestID: "r", Delta: &pb.Delta{Text: "c", SampleIndex: 0}},
		{RequestID: "r", Finished: &pb.Finished{SampleIndex: 0, Reason: pb.FinishReason_FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE}},
	}
	zero, one := tokenwire.Result{}, tokenwire.Result{SampleIndex: 1}
	for _, ev := range events {
		zero.Add(ev)
		one.Add(ev)
	}
	if zero.Text != "ac" || zero.Reason() != pb.FinishReason_FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE || zero.Started == nil {
		t.Fatalf("sample 0: %+v", zero)
	}
	if one.Text != "b" || one.Finished.GetSampleIndex() != 1 || one.Started == nil || one.RequestID != "r" {
		t.Fatalf("sample 1: %+v", one)
	}
	if got := pb.FinishReason_FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE.String(); got != "FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE" {
		t.Fatalf("finish reason name %q", got)
	}
}

func TestSessionSamples(t *testing.T) {
	client := newClient(t)
	session, err := client.OpenSession(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	samples, err := session.Start(tokenwire.TextRequest("a b c d", tokenwire.WithN(3), tokenwire.WithRequestID("s")))
	if err != nil {
		t.Fatal(err)
	}
	single, err := session.Start(tokenwire.TextRequest("one two", tokenwire.WithRequestID("one")))
	if err != nil {
		t.Fatal(err)
	}
	unfinished, err := session.Start(tokenwire.TextRequest("unfinished a b c", tokenwire.WithN(3), tokenwire.WithRequestID("u")))
	if err != nil {
		t.Fatal(err)
	}

	if _, err := samples.Collect(); !errors.Is(err, tokenwire.ErrMultipleSamples) {
		t.Fatalf("Collect with n = 3: %v", err)
	}
	results, err := samples.CollectSamples()
	if err != nil {
		t.Fatal(err)
	}
	checkSamples(t, results, "s")
	if res, err := single.Collect(); err != nil || res.Text != "one two " {
		t.Fatalf("single: %v, %v", res, err)
	}

	// "u" stays in flight after its first finished event; when the server ends
	// the stream it fails as unfinished.
	if err := session.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := session.Wait(); err != nil {
		t.Fatalf("session ended with %v", err)
	}
	results, err = unfinished.CollectSamples()
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(results) != 3 || results[2].Finished == nil {
		t.Fatalf("unfinished: %v, %v", results, err)
	}
}
