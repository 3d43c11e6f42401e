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

// WithTopP sets nucleus sampling: keep the smallest set of tokens whose
// probability adds up to at least p, in (0, 1].
func WithTopP(p float32) Option {
	return func(r *pb.GenerateRequest) { sampling(r).TopP = &p }
}

// WithTopK keeps only the k most likely tokens (at least 1).
func WithTopK(k uint32) Option {
	return func(r *pb.GenerateRequest) { sampling(r).TopK = &k }
}

// WithMinP drops tokens whose probability is below p times the top token's,
// p in [0, 1].
func WithMinP(p float32) Option {
	return func(r *pb.GenerateRequest) { sampling(r).MinP = &p }
}

// WithRepetitionPenalty penalizes tokens already in the prompt or output, in
// (0, 10]: above 1 discourages repetition, below 1 encourages it.
func WithRepetitionPenalty(penalty float32) Option {
	return func(r *pb.GenerateRequest) { sampling(r).RepetitionPenalty = &penalty }
}

// WithPresencePenalty subtracts penalty, in [-2, 2], once from the logit of
// every token already in the output.
func WithPresencePenalty(penalty float32) Option {
	return func(r *pb.GenerateRequest) { sampling(r).PresencePenalty = &penalty }
}

// WithFrequencyPenalty subtracts penalty, in [-2, 2], from each token's logit
// once per time it appears in the output.
func WithFrequencyPenalty(penalty float32) Option {
	return func(r *pb.GenerateRequest) { sampling(r).FrequencyPenalty = &penalty }
}

// WithMinTokens sets the fewest tokens to generate before end-of-sequence,
// stop tokens and stop strings may end the generation.
func WithMinTokens(n uint32) Option {
	return func(r *pb.GenerateRequest) { stopping(r).MinTokens = &n }
}

// WithStopTokenIDs adds token ids that end the generation when sampled (the
// matched id is reported in Finished.stop_token_id, not output).
func WithStopTokenIDs(ids ...uint32) Option {
	ids = append([]uint32(nil), ids...)
	return func(r *pb.GenerateRequest) { s := stopping(r); s.StopTokenIds = append(s.StopTokenIds, ids...) }
}

// WithLogprobs asks for the log-probability of each new token in the deltas
// (Delta.logprobs) and, with top > 0, the top most likely candidates at each
// position too (at most 20).
func WithLogprobs(top uint32) Option {
	return func(r *pb.GenerateRequest) {
		o := output(r)
		o.Logprobs = true
		o.TopLogprobs = top
	}
}

// WithOutputTokenIDs says whether deltas carry the new token ids (default
// true).
func WithOutputTokenIDs(on bool) Option {
	return func(r *pb.GenerateRequest) { output(r).TokenIds = &on }
}

// WithOutputText says whether deltas carry the new text (default true).
func WithOutputText(on bool) Option {
	return func(r *pb.GenerateRequest) { output(r).Text = &on }
}

// WithSpeculation selects the speculative decoding method of this request
// (SPECULATIVE_METHOD_OFF, _NGRAM, _EAGLE3; UNSPECIFIED: the server default)
// and, when draftLength > 0, the most draft tokens proposed per step (1 to
// 16; 0 leaves the server default).
func WithSpeculation(method pb.SpeculativeOptions_SpeculativeMethod, draftLength uint32) Option {
	return func(r *pb.GenerateRequest) {
		spec := &pb.SpeculativeOptions{Method: method}
		if draftLength > 0 {
			spec.DraftLength = &draftLength
		}
		r.Speculative = spec
	}
}

// WithSampling sets the raw sampling parameters (used as is, not copied);
// later sampling options change them.
func WithSampling(params *pb.SamplingParams) Option {
	return func(r *pb.GenerateRequest) { r.Sampling = params }
}

// WithStopping sets the raw stopping criteria (used as is, not copied);
// later stopping options change them.
func WithStopping(criteria *pb.StoppingCriteria) Option {
	return func(r *pb.GenerateRequest) { r.Stopping = criteria }
}

// WithOutput sets the raw output options (used as is, not copied); later
// output options change them.
func WithOutput(opts *pb.OutputOptions) Option {
	return func(r *pb.GenerateRequest) { r.Output = opts }
}

// WithTimeout bounds the generation itself: when d passes, it ends with
// FINISH_REASON_DEADLINE and keeps its partial output (unlike a context
// deadline, which fails the call).
func WithTimeout(d time.Duration) Option {
	return func(r *pb.GenerateRequest) { r.Timeout = durationpb.New(d) }
}

// WithN asks for n samples of the prompt (GenerateRequest.n, 1 to
// GetModelInfo.max_samples). The prompt is processed once; each delta and
// finished event carries its sample's index ([Event.SampleIndex]) and the
// stream ends after every sample's finished event. Read the samples with
// [Stream.CollectSamples] or [Generation.CollectSamples] ([Stream.Collect]
// refuses n > 1). Sample i draws with seed + i when a seed is set. The
// server refuses n > 1 with greedy decoding (temperature 0).
func WithN(n uint32) Option {
	return func(r *pb.GenerateRequest) { r.N = &n }
}

// WithLogitBias adds bias to the logits of the given token ids before
// sampling: token id -> bias in [-100, 100], where -100 bans the token and
// +100 forces it wherever it is allowed. The server accepts at most 300
// entries. Several calls merge their entries (a later one wins for the same
// id); the map is copied.
func WithLogitBias(bias map[uint32]float32) Option {
	return func(r *pb.GenerateRequest) {
		s := sampling(r)
		if s.LogitBias == nil {
			s.LogitBias = make(map[uint32]float32, len(bias))
		}
		for id, b := range bias {
			s.LogitBias[id] = b
		}
	}
}

// WithStructuredOutput constrains the output to a format, given as the raw
// message (used as is, not copied); [WithJSONSchema], [WithJSONObject],
// [WithRegex], [WithLarkGrammar], [WithGBNFGrammar] and [WithChoice] build
// each kind. One format applies: the last structured-output option wins. A
// kind the engine does not support (GetModelInfo.structured_output_kinds) or
// a format that does not compile is refused with INVALID_ARGUMENT. When the
// format allows nothing more the generation ends with
// FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE; it may still end earlier
// (max_tokens, a stop, a timeout) with the output incomplete.
func WithStructuredOutput(format *pb.StructuredOutput) Option {
	return func(r *pb.GenerateRequest) { r.StructuredOutput = format }
}

// WithJSONSchema constrains the output to one JSON value that validates
// against schema, a JSON Schema document given as JSON text (at most 64 KiB;
// see the proto for the supported keywords). json.Marshal builds it from a
// Go value.
func WithJSONSchema(schema string) Option {
	return func(r *pb.GenerateRequest) {
		r.StructuredOutput = &pb.StructuredOutput{Format: &pb.StructuredOutput_JsonSchema{JsonSchema: schema}}
	}
}

// WithJSONObject constrains the output to one JSON object, any keys and
// values.
func WithJSONObject() Option {
	return func(r *pb.GenerateRequest) {
		r.StructuredOutput = &pb.StructuredOutput{Format: &pb.StructuredOutput_JsonObject{JsonObject: &pb.JsonObjectFormat{}}}
	}
}

// WithRegex constrains the whole output to match pattern (Rust regex syntax,
// anchored at both ends, no lookaround or backreferences; at most 4 KiB).
func WithRegex(pattern string) Option {
	return func(r *pb.GenerateRequest) {
		r.StructuredOutput = &pb.StructuredOutput{Format: &pb.StructuredOutput_Regex{Regex: pattern}}
	}
}

// WithLarkGrammar constrains the output to a context-free grammar in Lark
// notation as llguidance reads it (`start` is the start rule; at most 64 KiB).
func WithLarkGrammar(grammar string) Option {
	return withGrammar(pb.Grammar_SYNTAX_LARK, grammar)
}

// WithGBNFGrammar constrains the output to a context-free grammar in GBNF,
// llama.cpp's EBNF (`root` is the start rule; at most 64 KiB).
func WithGBNFGrammar(grammar string) Option {
	return withGrammar(pb.Grammar_SYNTAX_GBNF, grammar)
}

// WithChoice constrains the output to exactly one of options (1 to 256
// strings, each 1 to 1024 characters).
func WithChoice(options ...string) Option {
	options = append([]string(nil), options...)
	return func(r *pb.GenerateRequest) {
		choice := &pb.Choice{Options: append([]string(nil), options...)}
		r.StructuredOutput = &pb.StructuredOutput{Format: &pb.StructuredOutput_Choice{Choice: choice}}
	}
}

func withGrammar(syntax pb.Grammar_Syntax, text string) Option {
	return func(r *pb.GenerateRequest) {
		grammar := &pb.Grammar{Syntax: syntax, Text: text}
		r.StructuredOutput = &pb.StructuredOutput{Format: &pb.StructuredOutput_Grammar{Grammar: grammar}}
	}
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

func output(r *pb.GenerateRequest) *pb.OutputOptions {
	if r.Output == nil {
		r.Output = &pb.OutputOptions{}
	}
	return r.Output
}

func sampling(r *pb.GenerateRequest) *pb.SamplingParams {
	if r.Sampling == nil {
		r.Sampling = &pb.SamplingParams{}
	}
	return r.Sampling
}
