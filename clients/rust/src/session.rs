use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;

use prost::Message as _;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::codegen::Bytes;
use tonic::{Code, Request, Status};

use crate::client::{Accumulator, AuthChannel, Client, Completion, Event, Samples};
use crate::error::{Error, Result};
use crate::pb::v1::{
    GenerateRequest, SessionCancel, SessionRequest, SessionResponse,
    generation_service_client::GenerationServiceClient, session_request::Action,
    session_response::Event as ResponseEvent,
};
use crate::retry::{RetryPolicy, jitter};

type EventSender = mpsc::UnboundedSender<Result<Event>>;

/// Why the session stream ended (cloneable, unlike [`Error`]).
#[derive(Clone, Debug)]
enum Ended {
    /// The call failed with this status.
    Status(Status),
    /// The server ended the stream while generations were in flight.
    Violation(String),
}

impl Ended {
    fn error(&self) -> Error {
        match self {
            Self::Status(status) => status.clone().into(),
            Self::Violation(message) => Error::ProtocolViolation(message.clone()),
        }
    }
}

/// Where one generation's events go, until each of its samples finished.
struct Route {
    sender: EventSender,
    samples: Samples,
    /// What re-sending the start needs, until the generation's first event
    /// arrived or it was cancelled (`None` from then on: no more retries).
    start: Option<Start>,
}

/// A start that may still be re-sent after a retryable `error` event.
struct Start {
    request: GenerateRequest,
    policy: RetryPolicy,
    /// Attempts so far, shared with the [`SessionGeneration`] (which reports
    /// it); also tells this start apart from a later one of the same id.
    attempts: Arc<AtomicU32>,
    /// While waiting to re-send: the error event's status (the generation's
    /// error, should the start not be re-sent after all) and the waiting task.
    waiting: Option<(Status, AbortHandle)>,
}

impl Route {
    /// Whether the generation is waiting to be re-sent (and so is not on the
    /// server).
    fn waiting(&self) -> bool {
        self.start
            .as_ref()
            .is_some_and(|start| start.waiting.is_some())
    }

    /// Ends a generation that was waiting to be re-sent with its last error.
    fn give_up(self) {
        if let Some((status, task)) = self.start.and_then(|start| start.waiting) {
            task.abort();
            let _ = self.sender.send(Err(status.into()));
        }
    }
}

/// State shared by the session handle, its generations and the reader task.
#[derive(Default)]
struct Shared {
    /// Generations in flight, by request id.
    routes: HashMap<String, Route>,
    /// Why the stream ended, once it has.
    ended: Option<Ended>,
    /// The request side; `None` once half-closed.
    outbound: Option<mpsc::UnboundedSender<SessionRequest>>,
    /// The client that opened the session: a cancel after the half-close
    /// calls its Abort RPC (`None` only in unit tests).
    client: Option<Client>,
    /// The client's retry policy, for starts without their own.
    retry: RetryPolicy,
    /// When the session call's deadline passes, if it has one.
    deadline: Option<Instant>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while holding the lock cannot leave `Shared` inconsistent.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A Session stream: many generations multiplexed by `request_id`.
///
/// Start generations with [`Session::start`]; each returns a
/// [`SessionGeneration`] that receives that generation's events only.
/// [`Session::close`] half-closes the stream ("no more requests"); the server
/// then ends it once the generations in flight finish. Dropping the session
/// and all its generations also half-closes it. Generations still in flight
/// can be cancelled after the half-close too: the cancel then goes through
/// the Abort RPC (see [`Session::cancel`]).
#[derive(Clone)]
pub struct Session {
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = lock(&self.shared);
        f.debug_struct("Session")
            .field("in_flight", &shared.routes.len())
            .field("ended", &shared.ended)
            .finish()
    }
}

impl Session {
    /// Opens a Session on `stub`; `client` (the stub's) makes the Abort
    /// calls of the cancels sent after the half-close.
    pub(crate) fn open(
        stub: GenerationServiceClient<AuthChannel>,
        deadline: Option<Duration>,
        client: Client,
    ) -> Self {
        let (outbound, requests) = mpsc::unbounded_channel();
        let shared = Arc::new(Mutex::new(Shared {
            outbound: Some(outbound),
            retry: client.retry_policy().clone(),
            client: Some(client),
            deadline: deadline.map(|deadline| Instant::now() + deadline),
            ..Shared::default()
        }));
        let mut request = Request::new(UnboundedReceiverStream::new(requests));
        if let Some(deadline) = deadline {
            request.set_timeout(deadline);
        }
        // The call runs in its own task: the server may send no response
        // headers before the first start, so awaiting them here could wait
        // forever.
        tokio::spawn(read(stub, request, Arc::downgrade(&shared)));
        Self { shared }
    }

    /// Starts a generation. `request.request_id` is required and must not be
    /// in flight on this session (`ALREADY_EXISTS` otherwise).
    ///
    /// A start whose `error` event comes before any other event of it, with a
    /// retryable code (`UNAVAILABLE`, `RESOURCE_EXHAUSTED`), is re-sent on
    /// this stream per the client's [`RetryPolicy`] (the server's
    /// `RetryInfo` delay, or jittered backoff; at most `max_attempts`
    /// attempts; never past the session's deadline), unless it was cancelled
    /// or the session closed meanwhile: then it ends with that error.
    /// [`SessionGeneration::attempts`] counts the attempts.
    pub fn start(&self, request: impl Into<GenerateRequest>) -> Result<SessionGeneration> {
        self.start_inner(request.into(), None)
    }

    /// [`Session::start`] with this start's own retry policy
    /// ([`RetryPolicy::disabled`]: never re-sent).
    pub fn start_with_retry(
        &self,
        request: impl Into<GenerateRequest>,
        policy: RetryPolicy,
    ) -> Result<SessionGeneration> {
        self.start_inner(request.into(), Some(policy))
    }

    fn start_inner(
        &self,
        request: GenerateRequest,
        policy: Option<RetryPolicy>,
    ) -> Result<SessionGeneration> {
        let request_id = request.request_id.clone();
        if request_id.is_empty() {
            return Err(Status::invalid_argument("a Session start needs a request_id").into());
        }
        let samples = Samples::of(request.n);
        let (sender, events) = mpsc::unbounded_channel();
        let attempts = Arc::new(AtomicU32::new(1));
        {
            let mut shared = lock(&self.shared);
            if let Some(ended) = &shared.ended {
                return Err(ended.error());
            }
            if shared.routes.contains_key(&request_id) {
                return Err(Status::already_exists(format!(
                    "request_id {request_id:?} is already in flight on this session"
                ))
                .into());
            }
            let Some(outbound) = &shared.outbound else {
                return Err(Status::failed_precondition("the session is closed").into());
            };
            let start = SessionRequest {
                action: Some(Action::Start(request.clone())),
            };
            if outbound.send(start).is_err() {
                return Err(Status::unavailable("the session stream is gone").into());
            }
            let policy = policy.unwrap_or_else(|| shared.retry.clone());
            // Registered under the same lock as the send, so no event of
            // this generation can arrive unrouted.
            shared.routes.insert(
                request_id.clone(),
                Route {
                    sender,
                    samples: samples.clone(),
                    start: Some(Start {
                        request,
                        policy,
                        attempts: attempts.clone(),
                        waiting: None,
                    }),
                },
            );
        }
        Ok(SessionGeneration {
            request_id,
            events,
            session: self.clone(),
            samples,
            done: false,
            attempts,
        })
    }

    /// Cancels the generation `request_id` of this session: it ends with a
    /// `Finished` event whose reason is `FINISH_REASON_CANCELLED`. Unknown
    /// or finished ids are ignored by the server.
    ///
    /// After [`Session::close`] the stream carries no more requests, so the
    /// cancel calls the Abort RPC with the request id instead (on the
    /// current tokio runtime, in the background, with the client's deadline,
    /// retry policy and metadata); the generation still ends with its
    /// `FINISH_REASON_CANCELLED` `Finished` event on the session. Should
    /// that call fail, the generation ends with its error. Ids not in flight
    /// on this session are then ignored here (an Abort would cancel a
    /// generation of that id elsewhere; [`crate::Client::abort`] does that).
    pub fn cancel(&self, request_id: impl Into<String>) -> Result<()> {
        let mut shared = lock(&self.shared);
        self.send_cancel(&mut shared, request_id.into())
    }

    /// Cancels every generation in flight on this session (each ends with a
    /// `FINISH_REASON_CANCELLED` `Finished` event) and returns how many
    /// cancels were sent (through the Abort RPC after [`Session::close`], as
    /// for [`Session::cancel`]). The session stays open for new starts; call
    /// [`Session::close`] too to end it.
    pub fn cancel_all(&self) -> Result<usize> {
        let mut shared = lock(&self.shared);
        let mut ids: Vec<String> = shared.routes.keys().cloned().collect();
        ids.sort();
        for id in &ids {
            self.send_cancel(&mut shared, id.clone())?;
        }
        Ok(ids.len())
    }

    /// The request ids of the generations in flight on this session.
    pub fn in_flight(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.shared).routes.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Half-closes the stream: no more starts. Generations in flight run to
    /// completion, unless cancelled (which then calls the Abort RPC). A
    /// generation waiting to be re-sent after a retryable error cannot be
    /// any more: it ends with that error.
    pub fn close(&self) {
        let mut shared = lock(&self.shared);
        shared.outbound = None;
        let waiting: Vec<String> = shared
            .routes
            .iter()
            .filter(|(_, route)| route.waiting())
            .map(|(id, _)| id.clone())
            .collect();
        for id in waiting {
            if let Some(route) = shared.routes.remove(&id) {
                route.give_up();
            }
        }
    }

    /// Cancels `request_id`: a cancel on the session's request side while
    /// it is open; after the half-close, an Abort call for a generation in
    /// flight on this session (nothing for any other id). A generation
    /// waiting to be re-sent is not on the server: it ends with its last
    /// error at once; any other is never re-sent from now on.
    fn send_cancel(&self, shared: &mut Shared, request_id: String) -> Result<()> {
        if let Some(route) = shared.routes.get_mut(&request_id) {
            if route.waiting() {
                if let Some(route) = shared.routes.remove(&request_id) {
                    route.give_up();
                }
                return Ok(());
            }
            route.start = None;
        }
        if let Some(outbound) = &shared.outbound {
            let cancel = SessionRequest {
                action: Some(Action::Cancel(SessionCancel { request_id })),
            };
            return outbound
                .send(cancel)
                .map_err(|_| Status::unavailable("the session stream is gone").into());
        }
        if !shared.routes.contains_key(&request_id) {
            // Finished, unknown, or the stream ended (and with it every
            // generation on it): nothing to cancel.
            return Ok(());
        }
        let Some(client) = shared.client.clone() else {
            return Err(Status::failed_precondition("the session is closed").into());
        };
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Status::failed_precondition(
                "the session is closed, and its Abort call needs a tokio runtime",
            )
        })?;
        let session = Arc::downgrade(&self.shared);
        runtime.spawn(async move {
            // Success: the generation ends with its cancelled `Finished`
            // event on the stream (or had finished meanwhile).
            let Err(error) = client.abort(request_id.clone()).await else {
                return;
            };
            let Some(session) = session.upgrade() else {
                return;
            };
            if let Some(route) = lock(&session).routes.remove(&request_id) {
                let _ = route.sender.send(Err(error));
            }
        });
        Ok(())
    }
}

/// One generation of a [`Session`]: a [`Stream`] of `Result<Event, Error>`
/// (or read it with [`SessionGeneration::message`]) that ends once every
/// sample has finished. Dropping it before then cancels the generation.
#[derive(Debug)]
pub struct SessionGeneration {
    request_id: String,
    events: mpsc::UnboundedReceiver<Result<Event>>,
    session: Session,
    samples: Samples,
    done: bool,
    attempts: Arc<AtomicU32>,
}

impl SessionGeneration {
    /// The generation's id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// How many times its start was sent (1 unless it was re-sent after a
    /// retryable `error` event, see [`Session::start`]).
    pub fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// The number of samples requested (`n`; 1 when the request left it
    /// unset): the generation ends after this many `Finished` events.
    pub fn samples(&self) -> u32 {
        self.samples.n()
    }

    /// The next event, or `None` once every sample has finished (one
    /// `Finished` event each). A generation that failed (the session's
    /// `error` event, or the whole stream failing) returns its status as
    /// [`Error::Status`], whose accessors decode the details (field
    /// violations, retry delay, `ErrorInfo` reason); a stream that ended
    /// before the generation finished is an [`Error::ProtocolViolation`].
    pub async fn message(&mut self) -> Result<Option<Event>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx))
            .await
            .transpose()
    }

    /// Cancels this generation (see [`Session::cancel`]).
    pub fn cancel(&self) -> Result<()> {
        self.session.cancel(self.request_id.clone())
    }

    /// Reads the remaining events and returns the output. A generation of
    /// several samples (`n` > 1) is refused with `INVALID_ARGUMENT`: use
    /// [`SessionGeneration::collect_samples`] for those.
    pub async fn collect(self) -> Result<Completion> {
        self.samples.require_one("collect", "collect_samples")?;
        let mut samples = self.collect_samples().await?;
        Ok(samples.remove(0))
    }

    /// Reads the remaining events and returns the output of each sample, in
    /// `sample_index` order (see [`crate::Client::complete_samples`]).
    pub async fn collect_samples(mut self) -> Result<Vec<Completion>> {
        let mut acc = Accumulator::new(self.samples.n());
        while let Some(event) = self.message().await? {
            acc.push(event);
        }
        acc.finish(std::mem::take(&mut self.request_id))
    }
}

impl Drop for SessionGeneration {
    /// A generation dropped before it finished (an early `return`, `?`, a
    /// `select!` that took another branch) is cancelled on the server.
    fn drop(&mut self) {
        if !self.done && !self.request_id.is_empty() {
            let mut shared = lock(&self.session.shared);
            if shared.routes.contains_key(&self.request_id) {
                let _ = self
                    .session
                    .send_cancel(&mut shared, self.request_id.clone());
            }
        }
    }
}

impl Stream for SessionGeneration {
    type Item = Result<Event>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let received = ready!(this.events.poll_recv(cx));
        this.done = true;
        Poll::Ready(Some(match received {
            Some(Ok(event)) => {
                match &event {
                    Event::Started(_) | Event::Delta(_) => this.done = false,
                    Event::Finished(finished) => match this.samples.finish(finished.sample_index) {
                        Ok(all) => this.done = all,
                        Err(error) => return Poll::Ready(Some(Err(error))),
                    },
                }
                Ok(event)
            }
            Some(Err(error)) => Err(error),
            None => Err(this.samples.ended_early("session")),
        }))
    }
}

/// Turns a Session `error` event into the status Generate would have failed
/// with, keeping the encoded `google.rpc.Status` as its details.
fn to_status(error: &tonic_types::pb::Status) -> Status {
    Status::with_details(
        Code::from_i32(error.code),
        error.message.clone(),
        Bytes::from(error.encode_to_vec()),
    )
}

/// Reads the Session stream and routes each event to its generation.
async fn read(
    mut client: GenerationServiceClient<AuthChannel>,
    request: Request<UnboundedReceiverStream<SessionRequest>>,
    shared: Weak<Mutex<Shared>>,
) {
    let result = async {
        let mut stream = client.session(request).await?.into_inner();
        while let Some(response) = stream.message().await? {
            let Some(session) = shared.upgrade() else {
                break;
            };
            route(&mut lock(&session), response, &shared);
        }
        Ok::<(), Status>(())
    }
    .await;
    let Some(shared) = shared.upgrade() else {
        return;
    };
    let mut shared = lock(&shared);
    let ended = match result {
        Ok(()) => {
            Ended::Violation("the session stream ended before this generation finished".into())
        }
        Err(status) => Ended::Status(status),
    };
    for (_, route) in shared.routes.drain() {
        if let Some((_, task)) = route.start.and_then(|start| start.waiting) {
            task.abort();
        }
        let _ = route.sender.send(Err(ended.error()));
    }
    shared.ended = Some(ended);
    shared.outbound = None;
}

/// Routes one response to its generation; `session` (the shared state's)
/// lets a retry re-send the start later.
fn route(shared: &mut Shared, response: SessionResponse, session: &Weak<Mutex<Shared>>) {
    let Some(event) = response.event else {
        return;
    };
    let Shared {
        routes,
        outbound,
        deadline,
        ..
    } = shared;
    let Some(route) = routes.get_mut(&response.request_id) else {
        // Events for unknown ids are ignored.
        return;
    };
    if let ResponseEvent::Error(error) = &event {
        let status = to_status(error);
        if let Some(start) = &mut route.start
            && outbound.is_some()
            && let Some(delay) = retry_delay(start, &status, *deadline)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let task = runtime.spawn(resend(
                session.clone(),
                response.request_id.clone(),
                start.attempts.clone(),
                delay,
            ));
            start.waiting = Some((status, task.abort_handle()));
            return;
        }
    } else {
        // The generation started: never re-sent from now on.
        route.start = None;
    }
    let (event, last) = match event {
        ResponseEvent::Started(started) => (Ok(Event::Started(started)), false),
        ResponseEvent::Delta(delta) => (Ok(Event::Delta(delta)), false),
        // The route stays until every sample has finished; a bad or
        // repeated sample index ends it (the generation reports the error).
        ResponseEvent::Finished(finished) => {
            let last = route.samples.finish(finished.sample_index).unwrap_or(true);
            (Ok(Event::Finished(finished)), last)
        }
        ResponseEvent::Error(error) => (Err(to_status(&error).into()), true),
    };
    // The generation's handle may have been dropped: nothing to do.
    let _ = route.sender.send(event);
    if last {
        routes.remove(&response.request_id);
    }
}

/// The wait before re-sending `start` after its `error` event `status`, or
/// `None` when it is final: not retryable, the attempts used up, a
/// `RetryInfo` delay above the cap, a wait ending past the deadline.
fn retry_delay(start: &Start, status: &Status, deadline: Option<Instant>) -> Option<Duration> {
    if start.waiting.is_some() {
        return None;
    }
    let attempts = start.attempts.load(Ordering::Relaxed);
    let delay = start
        .policy
        .delay(attempts, &Error::from(status.clone()), jitter())?;
    if deadline.is_some_and(|deadline| Instant::now() + delay >= deadline) {
        return None;
    }
    Some(delay)
}

/// Waits `delay`, then re-sends the start of `request_id` (the one counted
/// by `attempts`) on the session, unless it was cancelled, the session
/// closed or the stream ended meanwhile.
async fn resend(
    session: Weak<Mutex<Shared>>,
    request_id: String,
    attempts: Arc<AtomicU32>,
    delay: Duration,
) {
    tokio::time::sleep(delay).await;
    let Some(session) = session.upgrade() else {
        return;
    };
    let mut shared = lock(&session);
    let Shared {
        routes, outbound, ..
    } = &mut *shared;
    let Some(route) = routes.get_mut(&request_id) else {
        return;
    };
    let Some(start) = route
        .start
        .as_mut()
        .filter(|start| Arc::ptr_eq(&start.attempts, &attempts))
    else {
        return;
    };
    let Some((status, _)) = start.waiting.take() else {
        return;
    };
    let again = SessionRequest {
        action: Some(Action::Start(start.request.clone())),
    };
    if outbound
        .as_ref()
        .is_some_and(|outbound| outbound.send(again).is_ok())
    {
        attempts.fetch_add(1, Ordering::Relaxed);
    } else if let Some(route) = routes.remove(&request_id) {
        let _ = route.sender.send(Err(status.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::v1::{Delta, Finished};

    fn response(id: &str, event: ResponseEvent) -> SessionResponse {
        SessionResponse {
            request_id: id.into(),
            event: Some(event),
        }
    }

    fn to(sender: EventSender, n: Option<u32>) -> Route {
        Route {
            sender,
            samples: Samples::of(n),
            start: None,
        }
    }

    fn finished(sample_index: u32) -> ResponseEvent {
        ResponseEvent::Finished(Finished {
            sample_index,
            ..Finished::default()
        })
    }

    fn delta(sample_index: u32, text: &str) -> ResponseEvent {
        ResponseEvent::Delta(Delta {
            text: text.into(),
            sample_index,
            ..Delta::default()
        })
    }

    #[test]
    fn routes_every_sample_until_the_last_finishes() {
        let mut shared = Shared::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        shared.routes.insert("s".into(), to(tx, Some(3)));
        route(&mut shared, response("s", delta(1, "b")), &Weak::new());
        route(&mut shared, response("s", finished(1)), &Weak::new());
        route(&mut shared, response("s", delta(0, "a")), &Weak::new());
        route(&mut shared, response("s", finished(0)), &Weak::new());
        assert!(shared.routes.contains_key("s"), "sample 2 is still running");
        route(&mut shared, response("s", delta(2, "c")), &Weak::new());
        route(&mut shared, response("s", finished(2)), &Weak::new());
        assert!(shared.routes.is_empty());
        let mut seen = Vec::new();
        while let Ok(event) = rx.try_recv() {
            seen.push(match event.unwrap() {
                Event::Delta(delta) => format!("d{}{}", delta.sample_index, delta.text),
                Event::Finished(finished) => format!("f{}", finished.sample_index),
                Event::Started(_) => "s".into(),
            });
        }
        assert_eq!(seen, ["d1b", "f1", "d0a", "f0", "d2c", "f2"]);
    }

    #[tokio::test]
    async fn generation_reads_every_sample_then_collects_them() {
        let session = Session {
            shared: Arc::new(Mutex::new(Shared::default())),
        };
        let (tx, events) = mpsc::unbounded_channel();
        let generation = SessionGeneration {
            request_id: "s".into(),
            events,
            session: session.clone(),
            samples: Samples::of(Some(2)),
            done: false,
            attempts: Arc::default(),
        };
        assert_eq!(generation.samples(), 2);
        lock(&session.shared)
            .routes
            .insert("s".into(), to(tx, Some(2)));
        for event in [
            delta(1, "x"),
            delta(0, "a"),
            finished(0),
            delta(1, "y"),
            finished(1),
        ] {
            route(
                &mut lock(&session.shared),
                response("s", event),
                &Weak::new(),
            );
        }
        let samples = generation.collect_samples().await.unwrap();
        let texts: Vec<_> = samples.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["a", "xy"]);
    }

    #[tokio::test]
    async fn generation_needs_a_finished_event_per_sample() {
        let session = Session {
            shared: Arc::new(Mutex::new(Shared::default())),
        };
        let (tx, events) = mpsc::unbounded_channel();
        let mut generation = SessionGeneration {
            request_id: "s".into(),
            events,
            session,
            samples: Samples::of(Some(2)),
            done: false,
            attempts: Arc::default(),
        };
        tx.send(Ok(Event::Finished(Finished::default()))).unwrap();
        drop(tx);
        assert!(matches!(
            generation.message().await,
            Ok(Some(Event::Finished(_)))
        ));
        let error = generation.message().await.unwrap_err();
        assert!(
            matches!(&error, Error::ProtocolViolation(message) if message.contains("sample(s) 1")),
            "{error:?}"
        );
        // n > 1 cannot be collected into one output.
        let (_tx, events) = mpsc::unbounded_channel();
        let two = SessionGeneration {
            request_id: "t".into(),
            events,
            session: generation.session.clone(),
            samples: Samples::of(Some(2)),
            done: false,
            attempts: Arc::default(),
        };
        assert_eq!(
            two.collect().await.unwrap_err().code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn routes_by_id_and_drops_finished() {
        let mut shared = Shared::default();
        let (a_tx, mut a_rx) = mpsc::unbounded_channel();
        let (b_tx, mut b_rx) = mpsc::unbounded_channel();
        shared.routes.insert("a".into(), to(a_tx, None));
        shared.routes.insert("b".into(), to(b_tx, None));
        route(
            &mut shared,
            response("b", ResponseEvent::Finished(Finished::default())),
            &Weak::new(),
        );
        route(
            &mut shared,
            response(
                "a",
                ResponseEvent::Error(tonic_types::pb::Status {
                    code: Code::InvalidArgument as i32,
                    message: "bad".into(),
                    details: vec![],
                }),
            ),
            &Weak::new(),
        );
        assert!(shared.routes.is_empty());
        assert!(matches!(b_rx.try_recv(), Ok(Ok(Event::Finished(_)))));
        let status = a_rx.try_recv().unwrap().unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "bad");
        // Events for unknown ids are ignored.
        route(
            &mut shared,
            response("zzz", ResponseEvent::Finished(Finished::default())),
            &Weak::new(),
        );
    }

    #[test]
    fn cancel_all_cancels_every_generation_in_flight() {
        let (outbound, mut requests) = mpsc::unbounded_channel();
        let session = Session {
            shared: Arc::new(Mutex::new(Shared {
                outbound: Some(outbound),
                ..Shared::default()
            })),
        };
        let (tx, _rx) = mpsc::unbounded_channel();
        for id in ["b", "a"] {
            lock(&session.shared)
                .routes
                .insert(id.into(), to(tx.clone(), None));
        }
        assert_eq!(session.in_flight(), ["a", "b"]);
        assert_eq!(session.cancel_all().unwrap(), 2);
        let mut cancelled = Vec::new();
        while let Ok(request) = requests.try_recv() {
            let Some(Action::Cancel(cancel)) = request.action else {
                panic!("expected a cancel");
            };
            cancelled.push(cancel.request_id);
        }
        assert_eq!(cancelled, ["a", "b"]);
        // Dropping an unfinished generation cancels it.
        let (_tx, events) = mpsc::unbounded_channel();
        drop(SessionGeneration {
            request_id: "a".into(),
            events,
            session: session.clone(),
            samples: Samples::of(None),
            done: false,
            attempts: Arc::default(),
        });
        let Some(Action::Cancel(cancel)) = requests.try_recv().unwrap().action else {
            panic!("expected a cancel");
        };
        assert_eq!(cancel.request_id, "a");
        // Once closed, a cancel needs the Abort RPC: without a client to call
        // it on (tests/session_cancel.rs has one), it is refused.
        session.close();
        let error = session.cancel_all().unwrap_err();
        assert_eq!(error.code(), Code::FailedPrecondition);
    }

    #[tokio::test]
    async fn session_generation_is_a_stream() {
        use std::future::poll_fn;
        let session = Session {
            shared: Arc::new(Mutex::new(Shared::default())),
        };
        let (tx, events) = mpsc::unbounded_channel();
        let mut generation = SessionGeneration {
            request_id: "s".into(),
            events,
            session,
            samples: Samples::of(None),
            done: false,
            attempts: Arc::default(),
        };
        tx.send(Ok(Event::Delta(Delta::default()))).unwrap();
        tx.send(Ok(Event::Finished(Finished::default()))).unwrap();
        let mut seen = Vec::new();
        while let Some(item) = poll_fn(|cx| Pin::new(&mut generation).poll_next(cx)).await {
            seen.push(item.unwrap());
        }
        assert!(matches!(
            seen.as_slice(),
            [Event::Delta(_), Event::Finished(_)]
        ));
    }
}
