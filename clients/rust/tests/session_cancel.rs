//! Cancelling Session generations, before and after the session was
//! half-closed, against a fake HTTP/2 gRPC server on 127.0.0.1 whose
//! generations stream deltas until they reach their `max_tokens`, or until a
//! Session cancel or an Abort call (from any connection) cancels them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message as _;
use tokenwire_client::pb::v1::{
    AbortRequest, AbortResponse, SessionRequest, SessionResponse, session_request::Action,
    session_response,
};
use tokenwire_client::{Client, Code, Delta, Event, FinishReason, Finished, Started, request};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;
use tonic::codegen::Bytes;

mod common;
use common::{frame, grpc_response, ok_trailers, unframe};

/// The fake server's state, shared by all its connections.
#[derive(Default)]
struct Server {
    /// Generations running, by request id: sending on it cancels one.
    running: HashMap<String, oneshot::Sender<()>>,
    /// The request ids of the Abort calls received, in order.
    aborts: Vec<String>,
}

type State = Arc<Mutex<Server>>;

/// One generation: `Started`, then a delta every 10 ms until `max_tokens`
/// of them (`Finished` LENGTH) or a cancel (`Finished` CANCELLED).
async fn generate(
    id: String,
    max_tokens: u32,
    mut cancelled: oneshot::Receiver<()>,
    out: mpsc::UnboundedSender<SessionResponse>,
    state: State,
) {
    let send = |event| {
        let _ = out.send(SessionResponse {
            request_id: id.clone(),
            event: Some(event),
        });
    };
    send(session_response::Event::Started(Started {
        prompt_tokens: 1,
        model: "fake".into(),
    }));
    let mut reason = FinishReason::Length;
    for token in 0..max_tokens {
        tokio::select! {
            _ = &mut cancelled => {
                reason = FinishReason::Cancelled;
                break;
            }
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        send(session_response::Event::Delta(Delta {
            token_ids: vec![token],
            text: "x".into(),
            ..Delta::default()
        }));
    }
    state.lock().unwrap().running.remove(&id);
    send(session_response::Event::Finished(Finished {
        reason: reason.into(),
        ..Finished::default()
    }));
}

/// The Session call: starts and cancels generations as the requests come;
/// once the client half-closed and every generation finished, ends OK.
async fn session(
    mut body: h2::RecvStream,
    mut respond: h2::server::SendResponse<Bytes>,
    state: State,
) {
    let mut stream = respond.send_response(grpc_response(), false).unwrap();
    let (out, mut responses) = mpsc::unbounded_channel::<SessionResponse>();
    let writer = tokio::spawn(async move {
        // Ends once the reader and every generation dropped their sender.
        while let Some(response) = responses.recv().await {
            if stream.send_data(frame(&response), false).is_err() {
                return;
            }
        }
        let _ = stream.send_trailers(ok_trailers());
    });
    let mut buffer = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        buffer.extend_from_slice(&chunk);
        for message in unframe(&mut buffer) {
            match SessionRequest::decode(message.as_slice()).unwrap().action {
                Some(Action::Start(start)) => {
                    let (cancel, cancelled) = oneshot::channel();
                    let id = start.request_id.clone();
                    state.lock().unwrap().running.insert(id.clone(), cancel);
                    let max_tokens = start
                        .stopping
                        .as_ref()
                        .and_then(|s| s.max_tokens)
                        .unwrap_or(1000);
                    tokio::spawn(generate(
                        id,
                        max_tokens,
                        cancelled,
                        out.clone(),
                        state.clone(),
                    ));
                }
                Some(Action::Cancel(cancel)) => {
                    if let Some(cancel) = state.lock().unwrap().running.remove(&cancel.request_id) {
                        let _ = cancel.send(());
                    }
                }
                None => {}
            }
        }
    }
    // Half-closed: no more requests.
    drop(out);
    let _ = writer.await;
}

/// The Abort call: cancels the generation with that id, wherever it runs.
async fn abort(
    mut body: h2::RecvStream,
    mut respond: h2::server::SendResponse<Bytes>,
    state: State,
) {
    let mut received = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    let request = AbortRequest::decode(&received[5..]).unwrap();
    if request.request_id == "unabortable" {
        let mut response = grpc_response();
        Status::unimplemented("no Abort here")
            .add_header(response.headers_mut())
            .unwrap();
        let _ = respond.send_response(response, true);
        return;
    }
    let cancelled = {
        let mut state = state.lock().unwrap();
        state.aborts.push(request.request_id.clone());
        state
            .running
            .remove(&request.request_id)
            .is_some_and(|cancel| cancel.send(()).is_ok())
    };
    let mut stream = respond.send_response(grpc_response(), false).unwrap();
    stream
        .send_data(frame(&AbortResponse { cancelled }), false)
        .unwrap();
    let _ = stream.send_trailers(ok_trailers());
}

async fn serve(tcp: tokio::net::TcpStream, state: State) {
    let Ok(mut connection) = h2::server::handshake(tcp).await else {
        return;
    };
    while let Some(Ok((request, respond))) = connection.accept().await {
        let path = request.uri().path().to_owned();
        let body = request.into_body();
        let state = state.clone();
        match path.as_str() {
            "/tokenwire.v1.GenerationService/Session" => {
                tokio::spawn(session(body, respond, state));
            }
            "/tokenwire.v1.GenerationService/Abort" => {
                tokio::spawn(abort(body, respond, state));
            }
            other => panic!("unexpected call {other}"),
        }
    }
}

async fn fake_server() -> (Client, State) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = State::default();
    let serving = state.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve(tcp, serving.clone()));
        }
    });
    let client = Client::connect(format!("127.0.0.1:{port}")).await.unwrap();
    (client, state)
}

fn aborts(state: &State) -> Vec<String> {
    state.lock().unwrap().aborts.clone()
}

/// Bounds a step that would hang if a cancel got lost.
async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("timed out: the generation was not cancelled")
}

#[tokio::test]
async fn cancel_on_the_open_session_is_sent_on_the_stream() {
    let (client, state) = fake_server().await;
    let session = client.session();
    let mut generation = session.start(request::text("hi").id("open")).unwrap();
    assert!(matches!(
        within(generation.message()).await,
        Ok(Some(Event::Started(_)))
    ));
    generation.cancel().unwrap();
    session.close();
    let done = within(generation.collect()).await.unwrap();
    assert_eq!(done.reason(), FinishReason::Cancelled);
    assert!(aborts(&state).is_empty(), "no Abort call was needed");
}

#[tokio::test]
async fn cancel_after_close_calls_abort() {
    let (client, state) = fake_server().await;
    let session = client.session();
    let mut long = session.start(request::text("hi").id("long")).unwrap();
    let short = session
        .start(request::text("hi").id("short").max_tokens(3))
        .unwrap();
    assert!(matches!(
        within(long.message()).await,
        Ok(Some(Event::Started(_)))
    ));
    session.close();
    // The request side is half-closed: the cancel goes through Abort.
    long.cancel().unwrap();
    let long = within(long.collect()).await.unwrap();
    assert_eq!(long.reason(), FinishReason::Cancelled);
    assert_eq!(aborts(&state), ["long"]);
    // The other generation runs to its end.
    let short = within(short.collect()).await.unwrap();
    assert_eq!(short.reason(), FinishReason::Length);
    assert_eq!(short.text, "xxx");
    // Ids not in flight on this session are ignored, not aborted elsewhere.
    session.cancel("elsewhere").unwrap();
    assert_eq!(aborts(&state), ["long"]);
}

#[tokio::test]
async fn cancel_all_and_drop_after_close_call_abort() {
    let (client, state) = fake_server().await;
    let session = client.session();
    let mut a = session.start(request::text("hi").id("a")).unwrap();
    let b = session.start(request::text("hi").id("b")).unwrap();
    let c = session.start(request::text("hi").id("c")).unwrap();
    assert!(matches!(
        within(a.message()).await,
        Ok(Some(Event::Started(_)))
    ));
    session.close();
    // Dropping an unfinished generation after close aborts it: it ends
    // (and leaves the session) with its cancelled Finished event.
    drop(c);
    within(async {
        while session.in_flight().contains(&"c".to_owned()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(aborts(&state), ["c"]);
    assert_eq!(session.cancel_all().unwrap(), 2);
    let (a, b) = within(async { tokio::try_join!(a.collect(), b.collect()) })
        .await
        .unwrap();
    assert_eq!(a.reason(), FinishReason::Cancelled);
    assert_eq!(b.reason(), FinishReason::Cancelled);
    let mut aborted = aborts(&state);
    aborted.sort();
    assert_eq!(aborted, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_failed_abort_ends_the_generation_with_its_error() {
    let (client, _state) = fake_server().await;
    let session = client.session();
    let mut generation = session
        .start(request::text("hi").id("unabortable"))
        .unwrap();
    assert!(matches!(
        within(generation.message()).await,
        Ok(Some(Event::Started(_)))
    ));
    session.close();
    generation.cancel().unwrap();
    let error = within(async {
        loop {
            match generation.message().await {
                Ok(Some(Event::Finished(finished))) => panic!("not cancelled: {finished:?}"),
                Ok(Some(_)) => {}
                Ok(None) => panic!("ended without an error"),
                Err(error) => break error,
            }
        }
    })
    .await;
    assert_eq!(error.code(), Code::Unimplemented, "{error:?}");
    assert!(session.in_flight().is_empty());
}
