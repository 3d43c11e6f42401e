use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;

use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status, Streaming};

use crate::connect::{BearerAuth, ConnectError, ConnectOptions};
use crate::error::{Error, Result};
use crate::pb::v1::{
    AbortRequest, Delta, DetokenizeRequest, FinishReason, Finished, GenerateRequest,
    GenerateResponse, GetLoadRequest, GetLoadResponse, GetModelInfoRequest, GetModelInfoResponse,
    Started, TokenizeRequest, TokenizeResponse, generation_service_client::GenerationServiceClient,
    model_service_client::ModelServiceClient,
};
use crate::retry::{RetryPolicy, with_retries};
use crate::session::Session;

/// The channel under the stubs: a tonic [`Channel`] whose calls pass through
/// [`BearerAuth`] (which adds the bearer token, when there is one).
pub type AuthChannel = InterceptedService<Channel, BearerAuth>;

/// One event of a generation: `Started`, then any number of `Delta`, then
/// one `Finished` per sample (one, unless the request set `n` > 1; then the
/// samples' deltas come interleaved, each tagged with its `sample_index`).
pub type Event = crate::pb::v1::generate_response::Event;

/// A tokenwire client: both services on one channel.
///
/// Cheap to clone; clones share the underlying HTTP/2 connection.
#[derive(Clone, Debug)]
pub struct Client {
    generation: GenerationServiceClient<AuthChannel>,
    model: ModelServiceClient<AuthChannel>,
    deadline: Option<Duration>,
    metadata: MetadataMap,
    retry: RetryPolicy,
}

/// Options of one call, for [`Client::generate_with`]: they replace the
/// client's deadline and retry policy for that call.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct CallOptions {
    deadline: Option<Duration>,
    retry: Option<RetryPolicy>,
}

impl CallOptions {
    /// The client's deadline and retry policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// This call's gRPC deadline (see [`Client::with_deadline`]).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// This call's retry policy (see [`RetryPolicy`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }
}

impl Client {
    /// Connects to `target`, either `host:port` (plaintext) or a full
    /// `http://` / `https://` URI (`https://` verifies the server against
    /// the system's roots). [`Client::connect_with`] adds TLS, mTLS and a
    /// bearer token.
    pub async fn connect(target: impl AsRef<str>) -> Result<Self, ConnectError> {
        Self::connect_with(target, &ConnectOptions::new()).await
    }

    /// Connects to `target` (`host:port` or a URI) with these options: TLS
    /// (CA bundle or system roots), a client certificate (mTLS), a bearer
    /// token sent on every call. Reads the files named by the options and
    /// fails on a bad file, a certificate without its key, a malformed
    /// token, or a connection (or TLS handshake) that fails.
    pub async fn connect_with(
        target: impl AsRef<str>,
        options: &ConnectOptions,
    ) -> Result<Self, ConnectError> {
        let auth = options.bearer_auth()?;
        let channel = options.endpoint(target.as_ref())?.connect().await?;
        Ok(Self::from_channel_with_auth(channel, auth))
    }

    /// Wraps an existing channel (custom TLS, timeouts, a lazy channel);
    /// calls carry no token.
    pub fn from_channel(channel: Channel) -> Self {
        Self::from_channel_with_auth(channel, BearerAuth::default())
    }

    /// Wraps an existing channel; `auth` adds the bearer token to every call.
    pub fn from_channel_with_auth(channel: Channel, auth: BearerAuth) -> Self {
        Self {
            generation: GenerationServiceClient::with_interceptor(channel.clone(), auth.clone()),
            model: ModelServiceClient::with_interceptor(channel, auth),
            deadline: None,
            metadata: MetadataMap::new(),
            retry: RetryPolicy::default(),
        }
    }

    /// A client whose calls carry this gRPC deadline. For a stream (Generate,
    /// Session) it bounds the whole call: when it passes, the call fails with
    /// `DEADLINE_EXCEEDED` and the server cancels its generations. To keep
    /// partial output instead, set the request's own timeout
    /// ([`crate::request::RequestBuilder::timeout`]).
    #[must_use]
    pub fn with_deadline(&self, deadline: Duration) -> Self {
        Self {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// A client that retries per `policy` (the default: [`RetryPolicy::default`];
    /// [`RetryPolicy::disabled`] turns retries off). Generate is retried only
    /// before its first event; unary calls (model info, load, tokenize,
    /// detokenize, abort) until they succeed; a Session start is re-sent on
    /// its stream when its `error` event comes before any other event of it
    /// (see [`Session::start`]); the Session stream itself is not retried.
    #[must_use]
    pub fn with_retry(&self, policy: RetryPolicy) -> Self {
        Self {
            retry: policy,
            ..self.clone()
        }
    }

    /// The client's retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// A client whose unary and Generate calls (not Session streams, yet) also
    /// carry this ASCII metadata entry, e.g. the
    /// caller's W3C `traceparent`, which tokenwire's span for the call then
    /// continues (an OpenTelemetry app would inject its propagator's fields).
    /// Fails on a key or value gRPC does not allow.
    pub fn with_metadata(&self, key: &str, value: &str) -> Result<Self> {
        let key = AsciiMetadataKey::from_bytes(key.as_bytes())
            .map_err(|_| Status::invalid_argument(format!("invalid metadata key {key:?}")))?;
        let value = AsciiMetadataValue::try_from(value)
            .map_err(|_| Status::invalid_argument("invalid metadata value"))?;
        let mut client = self.clone();
        client.metadata.insert(key, value);
        Ok(client)
    }

    /// A request for one attempt, with `timeout` (the time left to the
    /// deadline) as its gRPC deadline.
    fn request<T>(&self, message: T, timeout: Option<Duration>) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        for entry in self.metadata.iter() {
            if let tonic::metadata::KeyAndValueRef::Ascii(key, value) = entry {
                request.metadata_mut().insert(key.clone(), value.clone());
            }
        }
        request
    }

    /// The generated GenerationService stub, for anything not wrapped here.
    /// Its calls carry the client's token, not its deadline.
    pub fn generation_stub(&self) -> GenerationServiceClient<AuthChannel> {
        self.generation.clone()
    }

    /// The generated ModelService stub (with the client's token).
    pub fn model_stub(&self) -> ModelServiceClient<AuthChannel> {
        self.model.clone()
    }

    /// Runs one unary call with the client's deadline and retries.
    async fn unary<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: FnMut(Option<Duration>) -> Fut,
        Fut: Future<Output = std::result::Result<T, Status>>,
    {
        with_retries(&self.retry, self.deadline, call).await
    }

    /// Starts one generation and returns its event stream, once its first
    /// event arrived (or the stream ended): until then a call failing with
    /// a retryable code is retried per the client's [`RetryPolicy`]; after
    /// it, never.
    pub async fn generate(&self, request: impl Into<GenerateRequest>) -> Result<Generation> {
        self.generate_with(request, &CallOptions::default()).await
    }

    /// [`Client::generate`] with this call's own deadline and retry policy.
    pub async fn generate_with(
        &self,
        request: impl Into<GenerateRequest>,
        options: &CallOptions,
    ) -> Result<Generation> {
        let request = request.into();
        let request_id = request.request_id.clone();
        let request_n = request.n;
        let policy = options.retry.as_ref().unwrap_or(&self.retry);
        let deadline = options.deadline.or(self.deadline);
        let mut attempts = 0_u32;
        let (stream, first) = with_retries(policy, deadline, |timeout| {
            attempts += 1;
            let mut stub = self.generation.clone();
            let call = self.request(request.clone(), timeout);
            async move {
                let mut stream = stub.generate(call).await?.into_inner();
                let first = stream.message().await?;
                Ok((stream, first))
            }
        })
        .await?;
        Ok(Generation {
            request_id,
            stream,
            first: Some(first),
            samples: Samples::of(request_n),
            done: false,
            attempts,
        })
    }

    /// Runs one generation to the end and returns its output. A request for
    /// several samples (`n` > 1) is refused with `INVALID_ARGUMENT` before
    /// anything is sent: use [`Client::complete_samples`] for those.
    pub async fn complete(&self, request: impl Into<GenerateRequest>) -> Result<Completion> {
        let request = request.into();
        Samples::of(request.n).require_one("complete", "complete_samples")?;
        self.generate(request).await?.collect().await
    }

    /// Runs one generation to the end and returns the output of each of its
    /// samples, in `sample_index` order (one for a request without `n`).
    /// Each [`Completion`] carries the request's `Started` event; the prompt
    /// is counted once, in the `usage.prompt_tokens` of the first sample to
    /// finish (0 in the others).
    pub async fn complete_samples(
        &self,
        request: impl Into<GenerateRequest>,
    ) -> Result<Vec<Completion>> {
        self.generate(request).await?.collect_samples().await
    }

    /// Cancels the generation `request_id` wherever it runs. Returns whether
    /// one was in flight.
    pub async fn abort(&self, request_id: impl Into<String>) -> Result<bool> {
        let message = AbortRequest {
            request_id: request_id.into(),
        };
        self.unary(|timeout| {
            let mut stub = self.generation.clone();
            let request = self.request(message.clone(), timeout);
            async move { Ok(stub.abort(request).await?.into_inner().cancelled) }
        })
        .await
    }

    /// Opens a Session: many generations multiplexed on one stream. The call
    /// itself starts in the background (on the current tokio runtime, so
    /// call this from within one); its failures are reported to every
    /// generation of the session.
    ///
    /// Cancels after [`Session::close`] call [`Client::abort`] on this
    /// client.
    pub fn session(&self) -> Session {
        Session::open(self.generation.clone(), self.deadline, self.clone())
    }

    /// Describes the model and engine behind the server.
    pub async fn model_info(&self) -> Result<GetModelInfoResponse> {
        self.unary(|timeout| {
            let mut stub = self.model.clone();
            let request = self.request(GetModelInfoRequest {}, timeout);
            async move { Ok(stub.get_model_info(request).await?.into_inner()) }
        })
        .await
    }

    /// The engine's current occupancy.
    pub async fn load(&self) -> Result<GetLoadResponse> {
        self.unary(|timeout| {
            let mut stub = self.model.clone();
            let request = self.request(GetLoadRequest {}, timeout);
            async move { Ok(stub.get_load(request).await?.into_inner()) }
        })
        .await
    }

    /// Tokenizes text exactly as a `text` prompt would be: the response's
    /// `token_ids` (its `rendered_prompt` is empty for text).
    pub async fn tokenize(&self, text: impl Into<String>) -> Result<TokenizeResponse> {
        use crate::pb::v1::tokenize_request::Input;
        self.tokenize_request(TokenizeRequest {
            input: Some(Input::Text(text.into())),
        })
        .await
    }

    /// Tokenizes a conversation, given as `(role, content)` pairs oldest
    /// first (as [`crate::request::chat`] takes them), exactly as a `chat`
    /// prompt would be: rendered with the model's chat template, followed
    /// by the generation prompt for the assistant's reply. The response
    /// carries the `token_ids` and the `rendered_prompt` text that was
    /// tokenized. An empty conversation is refused with `INVALID_ARGUMENT`
    /// (by the server).
    ///
    /// ```no_run
    /// # async fn run(client: &tokenwire_client::Client) -> tokenwire_client::Result<()> {
    /// let tokens = client
    ///     .tokenize_chat([("system", "Be brief."), ("user", "Hi!")])
    ///     .await?;
    /// println!("{} tokens: {:?}", tokens.token_ids.len(), tokens.rendered_prompt);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn tokenize_chat<R, C>(
        &self,
        messages: impl IntoIterator<Item = (R, C)>,
    ) -> Result<TokenizeResponse>
    where
        R: Into<String>,
        C: Into<String>,
    {
        use crate::pb::v1::{Chat, ChatMessage, tokenize_request::Input};
        let messages = messages
            .into_iter()
            .map(|(role, content)| ChatMessage {
                role: role.into(),
                content: content.into(),
            })
            .collect();
        self.tokenize_request(TokenizeRequest {
            input: Some(Input::Chat(Chat { messages })),
        })
        .await
    }

    /// Sends a Tokenize request as built (text or chat input), with the
    /// client's deadline, retries and metadata.
    pub async fn tokenize_request(&self, message: TokenizeRequest) -> Result<TokenizeResponse> {
        self.unary(|timeout| {
            let mut stub = self.model.clone();
            let request = self.request(message.clone(), timeout);
            async move { Ok(stub.tokenize(request).await?.into_inner()) }
        })
        .await
    }

    /// Turns token ids back into text (without special tokens).
    pub async fn detokenize(&self, token_ids: impl Into<Vec<u32>>) -> Result<String> {
        let message = DetokenizeRequest {
            token_ids: token_ids.into(),
            keep_special_tokens: false,
        };
        self.unary(|timeout| {
            let mut stub = self.model.clone();
            let request = self.request(message.clone(), timeout);
            async move { Ok(stub.detokenize(request).await?.into_inner().text) }
        })
        .await
    }
}

/// The event stream of one Generate call: a [`Stream`] of
/// `Result<Event, Error>` (read it with `futures::StreamExt::next`, or in a
/// `select!`), or read it with [`Generation::message`].
///
/// The stream ends (`None`) once every sample has finished; a stream that
/// ends before a `Finished` event for each sample, or that sends one for a
/// sample index out of range or seen before, yields an
/// [`Error::ProtocolViolation`]. After an error the stream ends.
///
/// Dropping it cancels the call, and with it the generation.
#[derive(Debug)]
pub struct Generation {
    request_id: String,
    stream: Streaming<GenerateResponse>,
    /// The first message, read by [`Client::generate`] (`Some(None)`: the
    /// stream ended before any), until it is returned.
    first: Option<Option<GenerateResponse>>,
    samples: Samples,
    done: bool,
    attempts: u32,
}

impl Generation {
    /// How many attempts starting the call took (1 unless it was retried).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The generation's id: the caller's, or (once the first event arrived)
    /// the one the server assigned.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The number of samples requested (`n`; 1 when the request left it
    /// unset): the stream ends after this many `Finished` events.
    pub fn samples(&self) -> u32 {
        self.samples.n()
    }

    /// The next event, or `None` once every sample has finished (the
    /// stream's next item, as a `Result<Option<_>>` for `?`).
    pub async fn message(&mut self) -> Result<Option<Event>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx))
            .await
            .transpose()
    }

    /// Checks one received message (`None`: the stream ended) against the
    /// contract and returns its event.
    fn accept(&mut self, received: Option<GenerateResponse>) -> Result<Option<Event>> {
        let Some(response) = received else {
            self.done = true;
            return Err(self.samples.ended_early("Generate stream"));
        };
        if self.request_id.is_empty() {
            self.request_id = response.request_id;
        }
        let Some(event) = response.event else {
            self.done = true;
            return Err(Error::ProtocolViolation(
                "Generate response without an event".into(),
            ));
        };
        if let Event::Finished(finished) = &event {
            match self.samples.finish(finished.sample_index) {
                Ok(all) => self.done = all,
                Err(error) => {
                    self.done = true;
                    return Err(error);
                }
            }
        }
        Ok(Some(event))
    }
    /// Reads the remaining events and returns the output. A generation of
    /// several samples (`n` > 1) is refused with `INVALID_ARGUMENT` (and
    /// cancelled, as the stream is dropped): use
    /// [`Generation::collect_samples`] for those.
    pub async fn collect(self) -> Result<Completion> {
        self.samples.require_one("collect", "collect_samples")?;
        let mut samples = self.collect_samples().await?;
        Ok(samples.remove(0))
    }

    /// Reads the remaining events and returns the output of each sample, in
    /// `sample_index` order (see [`Client::complete_samples`]).
    pub async fn collect_samples(mut self) -> Result<Vec<Completion>> {
        let mut acc = Accumulator::new(self.samples.n());
        while let Some(event) = self.message().await? {
            acc.push(event);
        }
        acc.finish(self.request_id)
    }
}

impl Stream for Generation {
    type Item = Result<Event>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let received = match this.first.take() {
            Some(first) => first,
            None => match ready!(Pin::new(&mut this.stream).poll_next(cx)) {
                Some(Ok(response)) => Some(response),
                Some(Err(status)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(status.into())));
                }
                None => None,
            },
        };
        Poll::Ready(this.accept(received).transpose())
    }
}

/// Which samples of a generation have finished: a stream is complete once
/// every sample, 0 to n - 1, has had its `Finished` event.
#[derive(Clone, Debug)]
pub(crate) struct Samples {
    n: u32,
    finished: BTreeSet<u32>,
}

impl Samples {
    /// The samples of a request whose `n` field is `n` (absent or 0: 1).
    pub(crate) fn of(n: Option<u32>) -> Self {
        Self {
            n: n.unwrap_or(1).max(1),
            finished: BTreeSet::new(),
        }
    }

    pub(crate) fn n(&self) -> u32 {
        self.n
    }

    /// Records sample `index`'s `Finished` event; returns whether every
    /// sample has now finished. An index out of range, or one that already
    /// finished, is an error.
    pub(crate) fn finish(&mut self, index: u32) -> Result<bool> {
        if index >= self.n {
            return Err(Error::ProtocolViolation(format!(
                "finished event for sample {index} of a generation of {} sample(s)",
                self.n
            )));
        }
        if !self.finished.insert(index) {
            return Err(Error::ProtocolViolation(format!(
                "a second finished event for sample {index}"
            )));
        }
        Ok(self.all_finished())
    }

    fn all_finished(&self) -> bool {
        u32::try_from(self.finished.len()).is_ok_and(|count| count == self.n)
    }

    /// The error for a stream (`what`) that ended before every sample
    /// finished.
    pub(crate) fn ended_early(&self, what: &str) -> Error {
        if self.n == 1 {
            return Error::ProtocolViolation(format!("{what} ended without a finished event"));
        }
        let unfinished = (0..self.n).filter(|index| !self.finished.contains(index));
        Error::ProtocolViolation(format!(
            "{what} ended without a finished event for sample(s) {} ({} of {} finished)",
            list(unfinished),
            self.finished.len(),
            self.n
        ))
    }

    /// Refuses a generation of several samples in the single-output helper
    /// `helper`, naming the per-sample one.
    pub(crate) fn require_one(&self, helper: &str, per_sample: &str) -> Result<()> {
        if self.n == 1 {
            return Ok(());
        }
        Err(Status::invalid_argument(format!(
            "{helper}() returns one output, but this generation has n = {} samples: \
             use {per_sample}() for one output per sample",
            self.n
        ))
        .into())
    }
}

/// Sample indices for a message: the first few, then how many more.
fn list(indices: impl Iterator<Item = u32>) -> String {
    const SHOWN: usize = 8;
    let mut shown = Vec::new();
    let mut more = 0_usize;
    for index in indices {
        if shown.len() < SHOWN {
            shown.push(index.to_string());
        } else {
            more += 1;
        }
    }
    let mut text = shown.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

/// The output of a generation (or of one of its samples, see
/// [`Client::complete_samples`]) that ran to its end.
#[derive(Clone, Debug)]
pub struct Completion {
    /// The generation's id.
    pub request_id: String,
    /// The output text: every delta's text (of this sample), concatenated.
    pub text: String,
    /// The output token ids (of this sample).
    pub token_ids: Vec<u32>,
    /// The generation's `Started` event (prompt tokens, model), if one was
    /// seen; shared by all its samples.
    pub started: Option<Started>,
    /// The (sample's) `Finished` event: reason, usage, timing.
    pub finished: Finished,
}

impl Completion {
    /// Why the generation (sample) ended.
    pub fn reason(&self) -> FinishReason {
        self.finished.reason()
    }

    /// Which sample this is (0 to n - 1; 0 for a request without `n`).
    pub fn sample_index(&self) -> u32 {
        self.finished.sample_index
    }

    /// Tokens generated and delivered, as counted by the server.
    pub fn completion_tokens(&self) -> u32 {
        self.finished
            .usage
            .map_or(0, |usage| usage.completion_tokens)
    }
}

/// Folds the events of a generation of `n` samples into one [`Completion`]
/// per sample.
pub(crate) struct Accumulator {
    n: u32,
    started: Option<Started>,
    samples: BTreeMap<u32, Partial>,
}

/// One sample's output so far.
#[derive(Default)]
struct Partial {
    text: String,
    token_ids: Vec<u32>,
    finished: Option<Finished>,
}

impl Accumulator {
    /// An accumulator for `n` samples (at least 1).
    pub(crate) fn new(n: u32) -> Self {
        Self {
            n: n.max(1),
            started: None,
            samples: BTreeMap::new(),
        }
    }

    pub(crate) fn push(&mut self, event: Event) {
        match event {
            Event::Started(started) => self.started = Some(started),
            Event::Delta(Delta {
                token_ids,
                text,
                sample_index,
                ..
            }) => {
                let sample = self.samples.entry(sample_index).or_default();
                sample.text.push_str(&text);
                sample.token_ids.extend(token_ids);
            }
            Event::Finished(finished) => {
                let index = finished.sample_index;
                self.samples.entry(index).or_default().finished = Some(finished);
            }
        }
    }

    /// One completion per sample, in index order; an error unless every
    /// sample 0 to n - 1 has finished.
    pub(crate) fn finish(self, request_id: String) -> Result<Vec<Completion>> {
        let Self {
            n,
            started,
            mut samples,
        } = self;
        let finished = |index: &u32| samples.get(index).is_some_and(|s| s.finished.is_some());
        if !(0..n).all(|index| finished(&index)) {
            let message = if n == 1 {
                "generation ended without a finished event".to_owned()
            } else {
                format!(
                    "generation ended without a finished event for sample(s) {}",
                    list((0..n).filter(|index| !finished(index)))
                )
            };
            return Err(Error::ProtocolViolation(message));
        }
        Ok((0..n)
            .filter_map(|index| samples.remove(&index))
            .filter_map(|sample| {
                Some(Completion {
                    request_id: request_id.clone(),
                    text: sample.text,
                    token_ids: sample.token_ids,
                    started: started.clone(),
                    finished: sample.finished?,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::v1::Usage;

    fn delta(sample_index: u32, ids: Vec<u32>, text: &str) -> Event {
        Event::Delta(Delta {
            token_ids: ids,
            text: text.into(),
            sample_index,
            ..Default::default()
        })
    }

    fn finished(sample_index: u32, reason: FinishReason, prompt: u32, completion: u32) -> Event {
        Event::Finished(Finished {
            reason: reason.into(),
            usage: Some(Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                ..Usage::default()
            }),
            sample_index,
            ..Finished::default()
        })
    }

    #[test]
    fn accumulator_concatenates_deltas() {
        let mut acc = Accumulator::new(1);
        acc.push(Event::Started(Started {
            prompt_tokens: 3,
            model: "m".into(),
        }));
        for (ids, text) in [(vec![1], " The"), (vec![2, 3], " sky")] {
            acc.push(delta(0, ids, text));
        }
        acc.push(finished(0, FinishReason::Length, 3, 3));
        let mut done = acc.finish("r".into()).unwrap();
        assert_eq!(done.len(), 1);
        let done = done.remove(0);
        assert_eq!(done.request_id, "r");
        assert_eq!(done.text, " The sky");
        assert_eq!(done.token_ids, [1, 2, 3]);
        assert_eq!(done.reason(), FinishReason::Length);
        assert_eq!(done.completion_tokens(), 3);
        assert_eq!(done.sample_index(), 0);
        assert_eq!(done.started.unwrap().prompt_tokens, 3);
    }

    #[test]
    fn accumulator_requires_finished() {
        let acc = Accumulator::new(1);
        let error = acc.finish("r".into()).unwrap_err();
        assert!(error.is_protocol_violation(), "{error:?}");
        assert_eq!(error.code(), tonic::Code::Unknown);
        assert_eq!(error.message(), "generation ended without a finished event");
    }

    #[test]
    fn accumulator_collects_interleaved_samples_in_index_order() {
        let mut acc = Accumulator::new(3);
        acc.push(Event::Started(Started {
            prompt_tokens: 9,
            model: "m".into(),
        }));
        acc.push(delta(2, vec![20], "C"));
        acc.push(delta(0, vec![1], "a"));
        acc.push(delta(1, vec![10], "B"));
        acc.push(delta(0, vec![2], "b"));
        acc.push(finished(1, FinishReason::EndOfSequence, 9, 1));
        acc.push(delta(2, vec![21, 22], "cc"));
        acc.push(finished(2, FinishReason::StructuredOutputComplete, 0, 3));
        acc.push(finished(0, FinishReason::Length, 0, 2));
        let done = acc.finish("r".into()).unwrap();
        let summary: Vec<_> = done
            .iter()
            .map(|c| {
                (
                    c.sample_index(),
                    c.text.as_str(),
                    c.token_ids.clone(),
                    c.reason(),
                    c.completion_tokens(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (0, "ab", vec![1, 2], FinishReason::Length, 2),
                (1, "B", vec![10], FinishReason::EndOfSequence, 1),
                (
                    2,
                    "Ccc",
                    vec![20, 21, 22],
                    FinishReason::StructuredOutputComplete,
                    3
                ),
            ]
        );
        // Every sample carries the Started event; the prompt is counted once.
        assert!(
            done.iter()
                .all(|c| c.started.as_ref().unwrap().prompt_tokens == 9)
        );
        let prompt: u32 = done
            .iter()
            .map(|c| c.finished.usage.unwrap().prompt_tokens)
            .sum();
        assert_eq!(prompt, 9);
    }

    #[test]
    fn accumulator_requires_a_finished_event_per_sample() {
        let mut acc = Accumulator::new(3);
        acc.push(delta(0, vec![1], "a"));
        acc.push(delta(2, vec![2], "b"));
        acc.push(finished(1, FinishReason::Length, 5, 1));
        let error = acc.finish("r".into()).unwrap_err();
        assert!(matches!(&error, Error::ProtocolViolation(_)), "{error:?}");
        assert_eq!(
            error.message(),
            "generation ended without a finished event for sample(s) 0, 2"
        );
    }

    #[test]
    fn samples_end_after_one_finished_event_each() {
        let mut samples = Samples::of(Some(3));
        assert_eq!(samples.n(), 3);
        assert!(!samples.finish(2).unwrap());
        assert!(!samples.finish(0).unwrap());
        assert!(samples.finish(1).unwrap());
        // Absent and 0 both mean one sample.
        for n in [None, Some(0), Some(1)] {
            let mut one = Samples::of(n);
            assert_eq!(one.n(), 1);
            assert!(one.finish(0).unwrap());
        }
    }

    #[test]
    fn samples_refuse_bad_or_repeated_indices() {
        let mut samples = Samples::of(Some(2));
        assert!(samples.finish(2).unwrap_err().is_protocol_violation());
        samples.finish(0).unwrap();
        let repeated = samples.finish(0).unwrap_err();
        assert_eq!(repeated.message(), "a second finished event for sample 0");
    }

    #[test]
    fn samples_name_the_unfinished_ones() {
        let one = Samples::of(None);
        assert_eq!(
            one.ended_early("Generate stream").message(),
            "Generate stream ended without a finished event"
        );
        let mut three = Samples::of(Some(3));
        three.finish(1).unwrap();
        assert_eq!(
            three.ended_early("Generate stream").message(),
            "Generate stream ended without a finished event for sample(s) 0, 2 (1 of 3 finished)"
        );
        let many = Samples::of(Some(12));
        assert!(
            many.ended_early("x")
                .message()
                .contains("sample(s) 0, 1, 2, 3, 4, 5, 6, 7 and 4 more (0 of 12 finished)")
        );
    }

    #[test]
    fn single_output_helpers_refuse_several_samples() {
        assert!(
            Samples::of(Some(1))
                .require_one("collect", "collect_samples")
                .is_ok()
        );
        let status = Samples::of(Some(2))
            .require_one("collect", "collect_samples")
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("n = 2"), "{}", status.message());
        assert!(status.message().contains("collect_samples()"));
    }
}
