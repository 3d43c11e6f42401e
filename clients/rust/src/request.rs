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

use std::time::Duration;

use crate::pb::v1::{
    Chat, ChatMessage, GenerateRequest, OutputOptions, SamplingParams, StoppingCriteria, TokenIds,
    generate_request::Input,
};

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

    /// Sets the sampling seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.sampling().seed = Some(seed);
        self
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
