use std::time::Duration;

use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status, Streaming};

use crate::connect::{BearerAuth, ConnectError, ConnectOptions};
use crate::pb::v1::{
    AbortRequest, Delta, DetokenizeRequest, FinishReason, Finished, GenerateRequest,
    GenerateResponse, GetLoadRequest, GetLoadResponse, GetModelInfoRequest, GetModelInfoResponse,
    Started, TokenizeRequest, TokenizeResponse, generation_service_client::GenerationServiceClient,
    model_service_client::ModelServiceClient,
};
use crate::session::Session;

/// The channel under the stubs: a tonic [`Channel`] whose calls pass through
/// [`BearerAuth`] (which adds the bearer token, when there is one).
pub type AuthChannel = InterceptedService<Channel, BearerAuth>;

/// One event of a generation: `Started`, then any number of `Delta`, then
/// one `Finished`.
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

    /// A client whose unary and Generate calls (not Session streams, yet) also
    /// carry this ASCII metadata entry, e.g. the
    /// caller's W3C `traceparent`, which tokenwire's span for the call then
    /// continues (an OpenTelemetry app would inject its propagator's fields).
    /// Fails on a key or value gRPC does not allow.
    pub fn with_metadata(&self, key: &str, value: &str) -> Result<Self, Status> {
        let key = AsciiMetadataKey::from_bytes(key.as_bytes())
            .map_err(|_| Status::invalid_argument(format!("invalid metadata key {key:?}")))?;
        let value = AsciiMetadataValue::try_from(value)
            .map_err(|_| Status::invalid_argument("invalid metadata value"))?;
        let mut client = self.clone();
        client.metadata.insert(key, value);
        Ok(client)
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(deadline) = self.deadline {
            request.set_timeout(deadline);
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

    /// Starts one generation and returns its event stream.
    pub async fn generate(
        &self,
        request: impl Into<GenerateRequest>,
    ) -> Result<Generation, Status> {
        let request = request.into();
        let request_id = request.request_id.clone();
        let stream = self
            .generation
            .clone()
            .generate(self.request(request))
            .await?
            .into_inner();
        Ok(Generation {
            request_id,
            stream,
            done: false,
        })
    }

    /// Runs one generation to the end and returns its output.
    pub async fn complete(
        &self,
        request: impl Into<GenerateRequest>,
    ) -> Result<Completion, Status> {
        self.generate(request).await?.collect().await
    }

    /// Cancels the generation `request_id` wherever it runs. Returns whether
    /// one was in flight.
    pub async fn abort(&self, request_id: impl Into<String>) -> Result<bool, Status> {
        let request = AbortRequest {
            request_id: request_id.into(),
        };
        let response = self.generation.clone().abort(self.request(request)).await?;
        Ok(response.into_inner().cancelled)
    }

    /// Opens a Session: many generations multiplexed on one stream. The call
    /// itself starts in the background (on the current tokio runtime, so
    /// call this from within one); its failures are reported to every
    /// generation of the session.
    pub fn session(&self) -> Session {
        Session::open(self.generation.clone(), self.deadline)
    }

    /// Describes the model and engine behind the server.
    pub async fn model_info(&self) -> Result<GetModelInfoResponse, Status> {
        let request = self.request(GetModelInfoRequest {});
        Ok(self
            .model
            .clone()
            .get_model_info(request)
            .await?
            .into_inner())
    }

    /// The engine's current occupancy.
    pub async fn load(&self) -> Result<GetLoadResponse, Status> {
        let request = self.request(GetLoadRequest {});
        Ok(self.model.clone().get_load(request).await?.into_inner())
    }

    /// Tokenizes text exactly as a `text` prompt would be.
    pub async fn tokenize(&self, text: impl Into<String>) -> Result<TokenizeResponse, Status> {
        use crate::pb::v1::tokenize_request::Input;
        let request = self.request(TokenizeRequest {
            input: Some(Input::Text(text.into())),
        });
        Ok(self.model.clone().tokenize(request).await?.into_inner())
    }

    /// Turns token ids back into text (without special tokens).
    pub async fn detokenize(&self, token_ids: impl Into<Vec<u32>>) -> Result<String, Status> {
        let request = self.request(DetokenizeRequest {
            token_ids: token_ids.into(),
            keep_special_tokens: false,
        });
        Ok(self
            .model
            .clone()
            .detokenize(request)
            .await?
            .into_inner()
            .text)
    }
}

/// The event stream of one Generate call.
///
/// Dropping it cancels the call, and with it the generation.
#[derive(Debug)]
pub struct Generation {
    request_id: String,
    stream: Streaming<GenerateResponse>,
    done: bool,
}

impl Generation {
    /// The generation's id: the caller's, or (once the first event arrived)
    /// the one the server assigned.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The next event, or `None` after `Finished`.
    pub async fn next(&mut self) -> Result<Option<Event>, Status> {
        if self.done {
            return Ok(None);
        }
        let Some(response) = self.stream.message().await? else {
            self.done = true;
            return Err(Status::unknown(
                "Generate stream ended without a finished event",
            ));
        };
        if self.request_id.is_empty() {
            self.request_id = response.request_id;
        }
        match response.event {
            Some(event) => {
                self.done = matches!(event, Event::Finished(_));
                Ok(Some(event))
            }
            None => Err(Status::unknown("Generate response without an event")),
        }
    }

    /// Reads the remaining events and returns the output.
    pub async fn collect(mut self) -> Result<Completion, Status> {
        let mut acc = Accumulator::default();
        while let Some(event) = self.next().await? {
            acc.push(event);
        }
        acc.finish(self.request_id)
    }
}

/// The output of a generation that ran to its end.
#[derive(Clone, Debug)]
pub struct Completion {
    /// The generation's id.
    pub request_id: String,
    /// The output text: every delta's text, concatenated.
    pub text: String,
    /// The output token ids.
    pub token_ids: Vec<u32>,
    /// The `Started` event (prompt tokens, model), if one was seen.
    pub started: Option<Started>,
    /// The `Finished` event: reason, usage, timing.
    pub finished: Finished,
}

impl Completion {
    /// Why the generation ended.
    pub fn reason(&self) -> FinishReason {
        self.finished.reason()
    }

    /// Tokens generated and delivered, as counted by the server.
    pub fn completion_tokens(&self) -> u32 {
        self.finished
            .usage
            .map_or(0, |usage| usage.completion_tokens)
    }
}

/// Folds events into a [`Completion`].
#[derive(Default)]
pub(crate) struct Accumulator {
    text: String,
    token_ids: Vec<u32>,
    started: Option<Started>,
    finished: Option<Finished>,
}

impl Accumulator {
    pub(crate) fn push(&mut self, event: Event) {
        match event {
            Event::Started(started) => self.started = Some(started),
            Event::Delta(Delta {
                token_ids, text, ..
            }) => {
                self.text.push_str(&text);
                self.token_ids.extend(token_ids);
            }
            Event::Finished(finished) => self.finished = Some(finished),
        }
    }

    pub(crate) fn finish(self, request_id: String) -> Result<Completion, Status> {
        let finished = self
            .finished
            .ok_or_else(|| Status::unknown("generation ended without a finished event"))?;
        Ok(Completion {
            request_id,
            text: self.text,
            token_ids: self.token_ids,
            started: self.started,
            finished,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::v1::Usage;

    #[test]
    fn accumulator_concatenates_deltas() {
        let mut acc = Accumulator::default();
        acc.push(Event::Started(Started {
            prompt_tokens: 3,
            model: "m".into(),
        }));
        for (ids, text) in [(vec![1], " The"), (vec![2, 3], " sky")] {
            acc.push(Event::Delta(Delta {
                token_ids: ids,
                text: text.into(),
                ..Default::default()
            }));
        }
        acc.push(Event::Finished(Finished {
            reason: FinishReason::Length.into(),
            usage: Some(Usage {
                completion_tokens: 3,
                ..Usage::default()
            }),
            ..Finished::default()
        }));
        let done = acc.finish("r".into()).unwrap();
        assert_eq!(done.text, " The sky");
        assert_eq!(done.token_ids, [1, 2, 3]);
        assert_eq!(done.reason(), FinishReason::Length);
        assert_eq!(done.completion_tokens(), 3);
    }

    #[test]
    fn accumulator_requires_finished() {
        let acc = Accumulator::default();
        assert_eq!(
            acc.finish("r".into()).unwrap_err().code(),
            tonic::Code::Unknown
        );
    }
}
