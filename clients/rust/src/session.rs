use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::codegen::Bytes;
use tonic::{Code, Request, Status};

use crate::client::{Accumulator, AuthChannel, Completion, Event};
use crate::pb::v1::{
    GenerateRequest, SessionCancel, SessionRequest, SessionResponse,
    generation_service_client::GenerationServiceClient, session_request::Action,
    session_response::Event as ResponseEvent,
};

type EventSender = mpsc::UnboundedSender<Result<Event, Status>>;

/// State shared by the session handle, its generations and the reader task.
#[derive(Default)]
struct Shared {
    /// Generations in flight, by request id.
    routes: HashMap<String, EventSender>,
    /// Why the stream ended, once it has.
    ended: Option<Status>,
    /// The request side; `None` once half-closed.
    outbound: Option<mpsc::UnboundedSender<SessionRequest>>,
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
/// and all its generations also half-closes it.
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
    pub(crate) fn open(
        client: GenerationServiceClient<AuthChannel>,
        deadline: Option<Duration>,
    ) -> Self {
        let (outbound, requests) = mpsc::unbounded_channel();
        let shared = Arc::new(Mutex::new(Shared {
            outbound: Some(outbound),
            ..Shared::default()
        }));
        let mut request = Request::new(UnboundedReceiverStream::new(requests));
        if let Some(deadline) = deadline {
            request.set_timeout(deadline);
        }
        // The call runs in its own task: the server may send no response
        // headers before the first start, so awaiting them here could wait
        // forever.
        tokio::spawn(read(client, request, Arc::downgrade(&shared)));
        Self { shared }
    }

    /// Starts a generation. `request.request_id` is required and must not be
    /// in flight on this session (`ALREADY_EXISTS` otherwise).
    pub fn start(&self, request: impl Into<GenerateRequest>) -> Result<SessionGeneration, Status> {
        let request = request.into();
        let request_id = request.request_id.clone();
        if request_id.is_empty() {
            return Err(Status::invalid_argument(
                "a Session start needs a request_id",
            ));
        }
        let (sender, events) = mpsc::unbounded_channel();
        {
            let mut shared = lock(&self.shared);
            if let Some(status) = &shared.ended {
                return Err(status.clone());
            }
            if shared.routes.contains_key(&request_id) {
                return Err(Status::already_exists(format!(
                    "request_id {request_id:?} is already in flight on this session"
                )));
            }
            let Some(outbound) = &shared.outbound else {
                return Err(Status::failed_precondition("the session is closed"));
            };
            let start = SessionRequest {
                action: Some(Action::Start(request)),
            };
            if outbound.send(start).is_err() {
                return Err(Status::unavailable("the session stream is gone"));
            }
            // Registered under the same lock as the send, so no event of
            // this generation can arrive unrouted.
            shared.routes.insert(request_id.clone(), sender);
        }
        Ok(SessionGeneration {
            request_id,
            events,
            session: self.clone(),
            done: false,
        })
    }

    /// Cancels the generation `request_id` of this session: it ends with a
    /// `Finished` event whose reason is `FINISH_REASON_CANCELLED`. Unknown
    /// or finished ids are ignored by the server.
    pub fn cancel(&self, request_id: impl Into<String>) -> Result<(), Status> {
        let shared = lock(&self.shared);
        let Some(outbound) = &shared.outbound else {
            return Err(Status::failed_precondition(
                "the session is closed; use Client::abort",
            ));
        };
        let cancel = SessionRequest {
            action: Some(Action::Cancel(SessionCancel {
                request_id: request_id.into(),
            })),
        };
        outbound
            .send(cancel)
            .map_err(|_| Status::unavailable("the session stream is gone"))
    }

    /// Half-closes the stream: no more starts or cancels. Generations in
    /// flight run to completion.
    pub fn close(&self) {
        lock(&self.shared).outbound = None;
    }
}

/// One generation of a [`Session`].
#[derive(Debug)]
pub struct SessionGeneration {
    request_id: String,
    events: mpsc::UnboundedReceiver<Result<Event, Status>>,
    session: Session,
    done: bool,
}

impl SessionGeneration {
    /// The generation's id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The next event, or `None` after `Finished`. A generation that failed
    /// (the session's `error` event, or the whole stream failing) returns
    /// its status as the error; the status's details carry the
    /// `google.rpc.Status` (see `tonic_types::StatusExt`).
    pub async fn next(&mut self) -> Result<Option<Event>, Status> {
        if self.done {
            return Ok(None);
        }
        let received = self.events.recv().await;
        self.done = !matches!(received, Some(Ok(Event::Started(_) | Event::Delta(_))));
        match received {
            Some(Ok(event)) => Ok(Some(event)),
            Some(Err(status)) => Err(status),
            None => Err(Status::unknown("session ended without a final event")),
        }
    }

    /// Cancels this generation (see [`Session::cancel`]).
    pub fn cancel(&self) -> Result<(), Status> {
        self.session.cancel(self.request_id.clone())
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
    shared: std::sync::Weak<Mutex<Shared>>,
) {
    let result = async {
        let mut stream = client.session(request).await?.into_inner();
        while let Some(response) = stream.message().await? {
            let Some(shared) = shared.upgrade() else {
                break;
            };
            route(&mut lock(&shared), response);
        }
        Ok::<(), Status>(())
    }
    .await;
    let Some(shared) = shared.upgrade() else {
        return;
    };
    let mut shared = lock(&shared);
    let status = match result {
        Ok(()) => Status::unknown("the session stream ended before this generation finished"),
        Err(status) => status,
    };
    for (_, sender) in shared.routes.drain() {
        let _ = sender.send(Err(status.clone()));
    }
    shared.ended = Some(status);
    shared.outbound = None;
}

fn route(shared: &mut Shared, response: SessionResponse) {
    let Some(event) = response.event else {
        return;
    };
    let (event, last) = match event {
        ResponseEvent::Started(started) => (Ok(Event::Started(started)), false),
        ResponseEvent::Delta(delta) => (Ok(Event::Delta(delta)), false),
        ResponseEvent::Finished(finished) => (Ok(Event::Finished(finished)), true),
        ResponseEvent::Error(error) => (Err(to_status(&error)), true),
    };
    let sender = if last {
        shared.routes.remove(&response.request_id)
    } else {
        shared.routes.get(&response.request_id).cloned()
    };
    if let Some(sender) = sender {
        // The generation's handle may have been dropped: nothing to do.
        let _ = sender.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::v1::Finished;

    fn response(id: &str, event: ResponseEvent) -> SessionResponse {
        SessionResponse {
            request_id: id.into(),
            event: Some(event),
        }
    }

    #[test]
    fn routes_by_id_and_drops_finished() {
        let mut shared = Shared::default();
        let (a_tx, mut a_rx) = mpsc::unbounded_channel();
        let (b_tx, mut b_rx) = mpsc::unbounded_channel();
        shared.routes.insert("a".into(), a_tx);
        shared.routes.insert("b".into(), b_tx);
        route(
            &mut shared,
            response("b", ResponseEvent::Finished(Finished::default())),
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
        );
    }
}
