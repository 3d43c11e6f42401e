//! Builders for [`GenerateRequest`].
//!
//! The generated message can always be built by hand; these helpers cover
//! the common cases without spelling out the nested `Option`s:
//!
//! ```
//! use tokenwire_client::request;
//! use std::time::Duration;
//!
//! let req = request::text("The sky is")
//!     .id("sky-1")
//!     .temperature(0.7)
//!     .seed(42)
//!     .max_tokens(16)
//!     .stop(".")
//!     .timeout(Duration::from_secs(5))
//!     .build();
//! assert_eq!(req.request_id, "sky-1");
//! assert_eq!(req.stopping.unwrap().max_tokens, Some(16));
//! ```
//!
//! Structured output (one format per request: a JSON Schema, any JSON object,
//! a regular expression, a Lark or GBNF grammar, or a choice of strings),
//! several samples of one prompt (`n`) and logit bias:
//!
//! ```
//! use tokenwire_client::request::{self, Format};
//!
//! let req = request::chat_user("Is the sky blue?")
//!     .choice(["yes", "no"])
//!     .greedy()
//!     .build();
//! let Some(Format::Choice(choice)) = req.structured_output.unwrap().format else {
//!     unreachable!()
//! };
//! assert_eq!(choice.options, ["yes", "no"]);
//!
//! let req = request::text("A colour:")
//!     .n(3)
//!     .temperature(1.0)
//!     .logit_bias(42, -100.0) // never sample token 42
//!     .build();
//! assert_eq!(req.n, Some(3));
//! assert_eq!(req.sampling.unwrap().logit_bias[&42], -100.0);
//! ```

use std::time::Duration;

use crate::pb::v1::{
    Chat, ChatMessage, Choice, GenerateRequest, Grammar, JsonObjectFormat, OutputOptions,
    SamplingParams, SpeculativeOptions, StoppingCriteria, StructuredOutput, TokenIds,
    generate_request::Input,
};

/// A speculative decoding method (`SpeculativeOptions.SpeculativeMethod`),
/// for [`RequestBuilder::speculative`].
pub use crate::pb::v1::speculative_options::SpeculativeMethod;

/// A structured output format (`StructuredOutput.format`), for
/// [`RequestBuilder::structured_output`].
pub use crate::pb::v1::structured_output::Format;

/// A grammar's notation (`Grammar.Syntax`), for [`RequestBuilder::grammar`].
pub use crate::pb::v1::grammar::Syntax as GrammarSyntax;

/// A [`GenerateRequest`] under construction.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct RequestBuilder {
    request: GenerateRequest,
}

/// A request for a plain text prompt.
pub fn text(prompt: impl Into<String>) -> RequestBuilder {
    RequestBuilder::with_input(Input::Text(prompt.into()))
}

/// A request for a prompt already tokenized by the caller.
pub fn token_ids(ids: impl Into<Vec<u32>>) -> RequestBuilder {
    RequestBuilder::with_input(Input::TokenIds(TokenIds { ids: ids.into() }))
}

/// A request for a conversation, given as `(role, content)` pairs, oldest
/// first.
pub fn chat<R, C>(messages: impl IntoIterator<Item = (R, C)>) -> RequestBuilder
where
    R: Into<String>,
    C: Into<String>,
{
    let messages = messages
        .into_iter()
        .map(|(role, content)| ChatMessage {
            role: role.into(),
            content: content.into(),
        })
        .collect();
    RequestBuilder::with_input(Input::Chat(Chat { messages }))
}

/// A request for a conversation of one user message.
pub fn chat_user(content: impl Into<String>) -> RequestBuilder {
    chat([("user", content.into())])
}

impl RequestBuilder {
    fn with_input(input: Input) -> Self {
        Self {
            request: GenerateRequest {
                input: Some(input),
                ..GenerateRequest::default()
            },
        }
    }

    fn sampling(&mut self) -> &mut SamplingParams {
        self.request.sampling.get_or_insert_with(Default::default)
    }

    fn stopping(&mut self) -> &mut StoppingCriteria {
        self.request.stopping.get_or_insert_with(Default::default)
    }

    fn output(&mut self) -> &mut OutputOptions {
        self.request.output.get_or_insert_with(Default::default)
    }

    /// Sets the caller-chosen `request_id` (required in a Session).
    pub fn id(mut self, request_id: impl Into<String>) -> Self {
        self.request.request_id = request_id.into();
        self
    }

    /// Sets the softmax temperature (0 is greedy).
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.sampling().temperature = Some(temperature);
        self
    }

    /// Greedy decoding: temperature 0.
    pub fn greedy(self) -> Self {
        self.temperature(0.0)
    }

    /// Sets nucleus sampling's `top_p`.
    pub fn top_p(mut self, top_p: f32) -> Self {
        self.sampling().top_p = Some(top_p);
        self
    }

    /// Sets `top_k`.
    pub fn top_k(mut self, top_k: u32) -> Self {
        self.sampling().top_k = Some(top_k);
        self
    }

    /// Drops tokens whose probability is below `min_p` times the top
    /// token's (in [0, 1]; engine default 0, off).
    pub fn min_p(mut self, min_p: f32) -> Self {
        self.sampling().min_p = Some(min_p);
        self
    }

    /// Sets the repetition penalty (in (0, 10]; above 1 discourages tokens
    /// already in the prompt or output; engine default 1, off).
    pub fn repetition_penalty(mut self, penalty: f32) -> Self {
        self.sampling().repetition_penalty = Some(penalty);
        self
    }

    /// Sets the presence penalty (in [-2, 2]): subtracted once from the logit
    /// of every token already in the output.
    pub fn presence_penalty(mut self, penalty: f32) -> Self {
        self.sampling().presence_penalty = Some(penalty);
        self
    }

    /// Sets the frequency penalty (in [-2, 2]): subtracted from a token's
    /// logit once per time it appears in the output.
    pub fn frequency_penalty(mut self, penalty: f32) -> Self {
        self.sampling().frequency_penalty = Some(penalty);
        self
    }

    /// Replaces all sampling parameters at once.
    pub fn sampling_params(mut self, sampling: SamplingParams) -> Self {
        self.request.sampling = Some(sampling);
        self
    }

    /// Sets the sampling seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.sampling().seed = Some(seed);
        self
    }

    /// Adds (or replaces) the logit bias of one token id: `bias` in
    /// [-100, 100] is added to its logit before sampling. -100 bans the token,
    /// +100 makes it the choice wherever it is allowed. At most 300 entries
    /// per request.
    pub fn logit_bias(mut self, token_id: u32, bias: f32) -> Self {
        self.sampling().logit_bias.insert(token_id, bias);
        self
    }

    /// Adds (or replaces) the logit biases of several token ids, as
    /// `(token_id, bias)` pairs (see [`RequestBuilder::logit_bias`]).
    pub fn logit_biases(mut self, biases: impl IntoIterator<Item = (u32, f32)>) -> Self {
        self.sampling().logit_bias.extend(biases);
        self
    }

    /// Asks for `n` samples of the prompt (1 to the server's
    /// `GetModelInfo.max_samples`). Each delta and finished event then
    /// carries its `sample_index` (0 to n - 1), the stream ends after every
    /// sample's finished event, and sample `i` draws with `seed + i` when a
    /// seed is set. The server refuses n > 1 with greedy decoding
    /// (temperature 0). Collect the samples with
    /// [`crate::Client::complete_samples`] or
    /// [`crate::Generation::collect_samples`].
    pub fn n(mut self, n: u32) -> Self {
        self.request.n = Some(n);
        self
    }

    /// Constrains the output to `format`, replacing any format set before
    /// (a request has at most one). The methods below are shortcuts for
    /// each kind; the server lists the kinds it supports in
    /// `GetModelInfo.structured_output_kinds` and refuses others (and a
    /// format that does not compile) with `INVALID_ARGUMENT`. When the
    /// format allows nothing more the generation ends with
    /// `FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE`.
    pub fn structured_output(mut self, format: Format) -> Self {
        self.request.structured_output = Some(StructuredOutput {
            format: Some(format),
        });
        self
    }

    /// The output is one JSON value valid against this JSON Schema (a JSON
    /// object, as text).
    pub fn json_schema(self, schema: impl Into<String>) -> Self {
        self.structured_output(Format::JsonSchema(schema.into()))
    }

    /// The output is one JSON object, with any keys and values.
    pub fn json_object(self) -> Self {
        self.structured_output(Format::JsonObject(JsonObjectFormat {}))
    }

    /// The whole output matches this regular expression (Rust regex syntax,
    /// anchored at both ends).
    pub fn regex(self, pattern: impl Into<String>) -> Self {
        self.structured_output(Format::Regex(pattern.into()))
    }

    /// The output follows this context-free grammar, written in `syntax`.
    pub fn grammar(self, syntax: GrammarSyntax, text: impl Into<String>) -> Self {
        self.structured_output(Format::Grammar(Grammar {
            syntax: syntax.into(),
            text: text.into(),
        }))
    }

    /// The output follows this Lark grammar (`start` is the start rule).
    pub fn lark_grammar(self, text: impl Into<String>) -> Self {
        self.grammar(GrammarSyntax::Lark, text)
    }

    /// The output follows this GBNF grammar (`root` is the start rule).
    pub fn gbnf_grammar(self, text: impl Into<String>) -> Self {
        self.grammar(GrammarSyntax::Gbnf, text)
    }

    /// The output is exactly one of these strings.
    pub fn choice<S: Into<String>>(self, options: impl IntoIterator<Item = S>) -> Self {
        self.structured_output(Format::Choice(Choice {
            options: options.into_iter().map(Into::into).collect(),
        }))
    }

    /// Sets the most tokens to generate.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.stopping().max_tokens = Some(max_tokens);
        self
    }

    /// Sets the fewest tokens to generate before a stop may end generation.
    pub fn min_tokens(mut self, min_tokens: u32) -> Self {
        self.stopping().min_tokens = Some(min_tokens);
        self
    }

    /// Adds a stop string.
    pub fn stop(mut self, stop: impl Into<String>) -> Self {
        self.stopping().stop.push(stop.into());
        self
    }

    /// Adds a stop token id.
    pub fn stop_token_id(mut self, id: u32) -> Self {
        self.stopping().stop_token_ids.push(id);
        self
    }

    /// Keeps generating past the end-of-sequence token.
    pub fn ignore_eos(mut self, ignore: bool) -> Self {
        self.stopping().ignore_eos = ignore;
        self
    }

    /// Asks for each token's log-probability, and `top` candidates per
    /// position.
    pub fn logprobs(mut self, top: u32) -> Self {
        let output = self.output();
        output.logprobs = true;
        output.top_logprobs = top;
        self
    }

    /// Whether deltas carry the new token ids (`OutputOptions.token_ids`;
    /// server default: true).
    pub fn include_token_ids(mut self, include: bool) -> Self {
        self.output().token_ids = Some(include);
        self
    }

    /// Whether deltas carry the new text (`OutputOptions.text`; server
    /// default: true).
    pub fn include_text(mut self, include: bool) -> Self {
        self.output().text = Some(include);
        self
    }

    /// Chooses speculative decoding for this request: the drafter, and the
    /// most draft tokens per step (1 to 16; `None`: the server default).
    /// Speculation never changes what is generated, only how fast; the
    /// server lists what it offers in `GetModelInfo.speculative`.
    pub fn speculative(mut self, method: SpeculativeMethod, draft_length: Option<u32>) -> Self {
        self.request.speculative = Some(SpeculativeOptions {
            method: method.into(),
            draft_length,
        });
        self
    }

    /// Turns speculative decoding off for this request.
    pub fn no_speculation(self) -> Self {
        self.speculative(SpeculativeMethod::Off, None)
    }

    /// Sets the generation's own timeout: when it passes the generation ends
    /// with `FINISH_REASON_DEADLINE` and keeps its partial output (unlike a
    /// gRPC deadline, see [`crate::Client::with_deadline`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.request.timeout = Some(prost_types::Duration {
            seconds: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(timeout.subsec_nanos()).unwrap_or(0),
        });
        self
    }

    /// The finished request.
    #[must_use]
    pub fn build(self) -> GenerateRequest {
        self.request
    }
}

impl From<RequestBuilder> for GenerateRequest {
    fn from(builder: RequestBuilder) -> Self {
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_user_builds_one_message() {
        let req = chat_user("hi").id("a").greedy().max_tokens(3).build();
        assert_eq!(req.request_id, "a");
        let Some(Input::Chat(chat)) = req.input else {
            panic!("expected chat input");
        };
        assert_eq!(chat.messages.len(), 1);
        assert_eq!(chat.messages[0].role, "user");
        assert_eq!(chat.messages[0].content, "hi");
        assert_eq!(req.sampling.unwrap().temperature, Some(0.0));
        assert_eq!(req.stopping.unwrap().max_tokens, Some(3));
    }

    #[test]
    fn unset_fields_stay_absent() {
        let req = text("x").build();
        assert!(req.sampling.is_none());
        assert!(req.stopping.is_none());
        assert!(req.output.is_none());
        assert!(req.timeout.is_none());
        assert!(req.structured_output.is_none());
        assert!(req.n.is_none());
        assert!(req.speculative.is_none());
    }

    #[test]
    fn every_field_is_reachable() {
        let req = text("x")
            .min_p(0.05)
            .repetition_penalty(1.1)
            .presence_penalty(0.5)
            .frequency_penalty(-0.5)
            .top_p(0.9)
            .top_k(40)
            .include_token_ids(false)
            .include_text(true)
            .logprobs(3)
            .speculative(SpeculativeMethod::Ngram, Some(5))
            .min_tokens(2)
            .stop_token_id(7)
            .ignore_eos(true)
            .build();
        let sampling = req.sampling.unwrap();
        assert_eq!(sampling.min_p, Some(0.05));
        assert_eq!(sampling.repetition_penalty, Some(1.1));
        assert_eq!(sampling.presence_penalty, Some(0.5));
        assert_eq!(sampling.frequency_penalty, Some(-0.5));
        assert_eq!((sampling.top_p, sampling.top_k), (Some(0.9), Some(40)));
        let output = req.output.unwrap();
        assert_eq!((output.token_ids, output.text), (Some(false), Some(true)));
        assert!(output.logprobs);
        assert_eq!(output.top_logprobs, 3);
        let speculative = req.speculative.unwrap();
        assert_eq!(speculative.method(), SpeculativeMethod::Ngram);
        assert_eq!(speculative.draft_length, Some(5));
        let stopping = req.stopping.unwrap();
        assert_eq!(stopping.min_tokens, Some(2));
        assert_eq!(stopping.stop_token_ids, [7]);
        assert!(stopping.ignore_eos);
        let off = text("x").no_speculation().build().speculative.unwrap();
        assert_eq!(off.method(), SpeculativeMethod::Off);
        let replaced = text("x")
            .temperature(2.0)
            .sampling_params(SamplingParams {
                seed: Some(1),
                ..SamplingParams::default()
            })
            .build()
            .sampling
            .unwrap();
        assert_eq!((replaced.temperature, replaced.seed), (None, Some(1)));
    }

    fn format(req: GenerateRequest) -> Format {
        req.structured_output
            .and_then(|output| output.format)
            .expect("a structured output format")
    }

    #[test]
    fn structured_output_of_every_kind() {
        let schema = r#"{"type": "object"}"#;
        assert_eq!(
            format(text("x").json_schema(schema).build()),
            Format::JsonSchema(schema.into())
        );
        assert_eq!(
            format(text("x").json_object().build()),
            Format::JsonObject(JsonObjectFormat {})
        );
        assert_eq!(
            format(text("x").regex("[0-9]+").build()),
            Format::Regex("[0-9]+".into())
        );
        let Format::Grammar(lark) = format(text("x").lark_grammar("start: \"a\"").build()) else {
            panic!("expected a grammar");
        };
        assert_eq!(lark.syntax(), GrammarSyntax::Lark);
        assert_eq!(lark.text, "start: \"a\"");
        let Format::Grammar(gbnf) = format(text("x").gbnf_grammar("root ::= \"a\"").build()) else {
            panic!("expected a grammar");
        };
        assert_eq!(gbnf.syntax(), GrammarSyntax::Gbnf);
        assert_eq!(gbnf.text, "root ::= \"a\"");
        let Format::Choice(choice) = format(text("x").choice(["yes", "no"]).build()) else {
            panic!("expected a choice");
        };
        assert_eq!(choice.options, ["yes", "no"]);
        // Sampling and stopping stay untouched.
        let req = text("x").json_object().build();
        assert!(req.sampling.is_none() && req.stopping.is_none());
    }

    #[test]
    fn last_structured_output_wins() {
        let req = text("x")
            .regex("a+")
            .choice(vec![String::from("b")])
            .build();
        assert!(matches!(format(req), Format::Choice(_)));
    }

    #[test]
    fn n_and_logit_bias() {
        let req = text("x")
            .n(4)
            .temperature(0.8)
            .logit_bias(7, -100.0)
            .logit_biases([(8, 2.5), (7, 1.0)])
            .build();
        assert_eq!(req.n, Some(4));
        let sampling = req.sampling.unwrap();
        assert_eq!(sampling.temperature, Some(0.8));
        assert_eq!(sampling.logit_bias.len(), 2);
        assert_eq!(sampling.logit_bias[&7], 1.0);
        assert_eq!(sampling.logit_bias[&8], 2.5);
    }

    #[test]
    fn timeout_splits_seconds_and_nanos() {
        let req = token_ids(vec![1, 2])
            .timeout(Duration::from_millis(1500))
            .build();
        let timeout = req.timeout.unwrap();
        assert_eq!((timeout.seconds, timeout.nanos), (1, 500_000_000));
    }
}
