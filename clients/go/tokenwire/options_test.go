package tokenwire_test

import (
	"context"
	"slices"
	"testing"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
	"github.com/tokenwire/tokenwire/clients/go/tokenwire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestEveryRequestFieldHasAnOption(t *testing.T) {
	stopIDs := []uint32{7, 8}
	req := tokenwire.TextRequest("x",
		tokenwire.WithTopP(0.9), tokenwire.WithTopK(40), tokenwire.WithMinP(0.05),
		tokenwire.WithRepetitionPenalty(1.1), tokenwire.WithPresencePenalty(0.5), tokenwire.WithFrequencyPenalty(-0.5),
		tokenwire.WithMinTokens(3), tokenwire.WithStopTokenIDs(stopIDs...), tokenwire.WithStopTokenIDs(9),
		tokenwire.WithLogprobs(5), tokenwire.WithOutputTokenIDs(false), tokenwire.WithOutputText(true),
		tokenwire.WithSpeculation(pb.SpeculativeOptions_SPECULATIVE_METHOD_NGRAM, 6))
	stopIDs[0] = 0 // the caller's slice is not the request's
	s, st, o, sp := req.GetSampling(), req.GetStopping(), req.GetOutput(), req.GetSpeculative()
	if s.GetTopP() != 0.9 || s.GetTopK() != 40 || s.GetMinP() != 0.05 || s.GetRepetitionPenalty() != 1.1 ||
		s.GetPresencePenalty() != 0.5 || s.GetFrequencyPenalty() != -0.5 {
		t.Fatalf("sampling %v", s)
	}
	if st.GetMinTokens() != 3 || !slices.Equal(st.GetStopTokenIds(), []uint32{7, 8, 9}) {
		t.Fatalf("stopping %v", st)
	}
	if !o.GetLogprobs() || o.GetTopLogprobs() != 5 || o.TokenIds == nil || o.GetTokenIds() || o.Text == nil || !o.GetText() {
		t.Fatalf("output %v", o)
	}
	if sp.GetMethod() != pb.SpeculativeOptions_SPECULATIVE_METHOD_NGRAM || sp.GetDraftLength() != 6 {
		t.Fatalf("speculative %v", sp)
	}
	off := tokenwire.TextRequest("x", tokenwire.WithSpeculation(pb.SpeculativeOptions_SPECULATIVE_METHOD_OFF, 0))
	if off.GetSpeculative().DraftLength != nil || off.GetSpeculative().GetMethod() != pb.SpeculativeOptions_SPECULATIVE_METHOD_OFF {
		t.Fatalf("speculative %v", off.GetSpeculative())
	}
	plain := tokenwire.TextRequest("x")
	if plain.Sampling != nil || plain.Stopping != nil || plain.Output != nil || plain.Speculative != nil {
		t.Fatalf("unexpected defaults %v", plain)
	}
	raw := tokenwire.TextRequest("x", tokenwire.WithSampling(&pb.SamplingParams{}), tokenwire.WithTopK(2),
		tokenwire.WithStopping(&pb.StoppingCriteria{Stop: []string{"."}}), tokenwire.WithOutput(&pb.OutputOptions{Logprobs: true}))
	if raw.GetSampling().GetTopK() != 2 || raw.GetStopping().GetStop()[0] != "." || !raw.GetOutput().GetLogprobs() {
		t.Fatalf("raw %v", raw)
	}
}

// modelServer answers Tokenize with one id per chat message or per byte of
// text, and echoes the rendered prompt.
type modelServer struct {
	pb.UnimplementedModelServiceServer
}

func (modelServer) Tokenize(_ context.Context, req *pb.TokenizeRequest) (*pb.TokenizeResponse, error) {
	if chat := req.GetChat(); chat != nil {
		var ids []uint32
		rendered := ""
		for i, m := range chat.GetMessages() {
			ids = append(ids, uint32(i))
			rendered += "<" + m.GetRole() + ">" + m.GetContent()
		}
		return &pb.TokenizeResponse{TokenIds: ids, RenderedPrompt: rendered}, nil
	}
	return &pb.TokenizeResponse{TokenIds: make([]uint32, len(req.GetText())), RenderedPrompt: req.GetText()}, nil
}

func TestTokenizeChat(t *testing.T) {
	dialer := serveFake(t, fakeServer{}, func(s *grpc.Server) { pb.RegisterModelServiceServer(s, modelServer{}) })
	client, err := tokenwire.Dial("passthrough:///bufnet", grpc.WithContextDialer(dialer), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ids, rendered, err := client.TokenizeChat(testContext(t), []*pb.ChatMessage{tokenwire.System("s"), tokenwire.User("u")})
	if err != nil || !slices.Equal(ids, []uint32{0, 1}) || rendered != "<system>s<user>u" {
		t.Fatalf("TokenizeChat = %v, %q, %v", ids, rendered, err)
	}
	if ids, err := client.Tokenize(testContext(t), "abc"); err != nil || len(ids) != 3 {
		t.Fatalf("Tokenize = %v, %v", ids, err)
	}
}
