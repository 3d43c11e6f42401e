package tokenwire

import (
	"time"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Option sets fields of a GenerateRequest; see TextRequest and ChatRequest.
type Option func(*pb.GenerateRequest)

// TextRequest returns a request for a plain text prompt.
func TextRequest(prompt string, opts ...Option) *pb.GenerateRequest {
	return apply(&pb.GenerateRequest{Input: &pb.GenerateRequest_Text{Text: prompt}}, opts)
}

// ChatRequest returns a request for a conversation rendered with the model's
// chat template.
func ChatRequest(messages []*pb.ChatMessage, opts ...Option) *pb.GenerateRequest {
	chat := &pb.Chat{Messages: messages}
	return apply(&pb.GenerateRequest{Input: &pb.GenerateRequest_Chat{Chat: chat}}, opts)
}

// TokensRequest returns a request for a prompt already tokenized.
func TokensRequest(ids []uint32, opts ...Option) *pb.GenerateRequest {
	tokens := &pb.TokenIds{Ids: ids}
	return apply(&pb.GenerateRequest{Input: &pb.GenerateRequest_TokenIds{TokenIds: tokens}}, opts)
}

// Message returns one chat message with the given role.
func Message(role, content string) *pb.ChatMessage {
	return &pb.ChatMessage{Role: role, Content: content}
}

// User returns a chat message from the user.
func User(content string) *pb.ChatMessage { return Message("user", content) }

// System returns a system chat message.
func System(content string) *pb.ChatMessage { return Message("system", content) }

// Assistant returns a chat message from the assistant.
func Assistant(content string) *pb.ChatMessage { return Message("assistant", content) }

// WithRequestID sets the caller-chosen request id (required in a Session).
func WithRequestID(id string) Option {
	return func(r *pb.GenerateRequest) { r.RequestId = id }
}

// WithMaxTokens sets the most tokens to generate.
func WithMaxTokens(n uint32) Option {
	return func(r *pb.GenerateRequest) { stopping(r).MaxTokens = &n }
}

// WithStop adds stop strings.
func WithStop(stop ...string) Option {
	return func(r *pb.GenerateRequest) { s := stopping(r); s.Stop = append(s.Stop, stop...) }
}

// WithIgnoreEOS keeps generating past the model's end-of-sequence token.
func WithIgnoreEOS() Option {
	return func(r *pb.GenerateRequest) { stopping(r).IgnoreEos = true }
}

// WithTemperature sets the sampling temperature; 0 is greedy decoding.
func WithTemperature(t float32) Option {
	return func(r *pb.GenerateRequest) { sampling(r).Temperature = &t }
}

// Greedy selects greedy decoding (temperature 0).
func Greedy() Option { return WithTemperature(0) }

// WithSeed sets the sampling seed.
func WithSeed(seed uint64) Option {
	return func(r *pb.GenerateRequest) { sampling(r).Seed = &seed }
}

// WithTimeout bounds the generation itself: when d passes, it ends with
// FINISH_REASON_DEADLINE and keeps its partial output (unlike a context
// deadline, which fails the call).
func WithTimeout(d time.Duration) Option {
	return func(r *pb.GenerateRequest) { r.Timeout = durationpb.New(d) }
}

func apply(r *pb.GenerateRequest, opts []Option) *pb.GenerateRequest {
	for _, opt := range opts {
		opt(r)
	}
	return r
}

func stopping(r *pb.GenerateRequest) *pb.StoppingCriteria {
	if r.Stopping == nil {
		r.Stopping = &pb.StoppingCriteria{}
	}
	return r.Stopping
}

func sampling(r *pb.GenerateRequest) *pb.SamplingParams {
	if r.Sampling == nil {
		r.Sampling = &pb.SamplingParams{}
	}
	return r.Sampling
}
