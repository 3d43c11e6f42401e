//! Re-sent Session starts and chat Tokenize, against a fake HTTP/2 gRPC
//! server on 127.0.0.1 whose answer to a Session start depends on its
//! `request_id` and on how many times that id was started, and whose
//! Tokenize answers with the rendered prompt it made up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message as _;
use tokenwire_client::pb::v1::{
    Chat, ChatMessage, SessionRequest, SessionResponse, TokenizeRequest, TokenizeResponse,
    session_request::Action, session_response, tokenize_request,
};
use tokenwire_client::{
    Client, Code, Delta, ErrorDetails, Event, FinishReason, Finished, RetryPolicy, Started, request,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;
use tonic::codegen::Bytes;

mod common;
use common::{frame, grpc_response, ok_trailers, unframe};

/// Starts received per request id.
type Starts = Arc<Mutex<HashMap<String, u32>>>;

/// A Session `error` event: `code`, with a `RetryInfo` delay if given.
fn error(code: Code, retry_delay: Option<Duration>) -> session_response::Event {
    let details = match retry_delay {
        Some(delay) => ErrorDetails::with_retry_info(Some(delay)),
        None => ErrorDetails::new(),
    };
    let status = <Status as tonic_types::StatusExt>::with_error_details(code, "busy", details);
    let status = tonic_types::pb::Status::decode(status.details()).unwrap();
    session_response::Event::Error(status)
}

fn started() -> session_response::Event {
    session_response::Event::Started(Started {
        prompt_tokens: 2,
        model: "fake".into(),
    })
}

fn served() -> Vec<session_response::Event> {
    vec![
        started(),
        session_response::Event::Delta(Delta {
            token_ids: vec![1],
            text: "ok".into(),
            ..Delta::default()
        }),
        session_response::Event::Finished(Finished {
            reason: FinishReason::Length.into(),
            ..Finished::default()
        }),
    ]
}

/// The events the server sends for start number `start` (1-based) of
/// `request_id`.
fn script(request_id: &str, start: u32) -> Vec<session_response::Event> {
    let busy = |delay| vec![error(Code::ResourceExhausted, Some(delay))];
    match request_id {
        // Queue full twice (RetryInfo 50 ms), then served.
        "busy-twice" if start <= 2 => busy(Duration::from_millis(50)),
        // Unavailable once, without RetryInfo (backoff), then served.
        "down-once" if start == 1 => vec![error(Code::Unavailable, None)],
        // Started, then a retryable error: not re-sent.
        "error-after-started" => vec![started(), error(Code::Unavailable, None)],
        "always-busy" => busy(Duration::from_millis(10)),
        // A long RetryInfo delay: time to cancel or close meanwhile.
        "slow-busy" => busy(Duration::from_secs(2)),
        "invalid" => vec![error(Code::InvalidArgument, None)],
        _ => served(),
    }
}

/// The Session call: answers each start per `script`; ends OK once the
/// client half-closed.
async fn session(
    mut body: h2::RecvStream,
    mut respond: h2::server::SendResponse<Bytes>,
    starts: Starts,
) {
    let mut stream = respond.send_response(grpc_response(), false).unwrap();
    let (out, mut responses) = mpsc::unbounded_channel::<SessionResponse>();
    let writer = tokio::spawn(async move {
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
            let Some(Action::Start(start)) =
                SessionRequest::decode(message.as_slice()).unwrap().action
            else {
                continue; // cancels: every scripted generation already ended
            };
            let id = start.request_id.clone();
            let count = {
                let mut starts = starts.lock().unwrap();
                let count = starts.entry(id.clone()).or_default();
                *count += 1;
                *count
            };
            for event in script(&id, count) {
                let _ = out.send(SessionResponse {
                    request_id: id.clone(),
                    event: Some(event),
                });
            }
        }
    }
    drop(out);
    let _ = writer.await;
}

/// Tokenize: one token per byte; chat input renders as `<role>content\n`
/// per message, then `<assistant>`.
async fn tokenize(mut body: h2::RecvStream, mut respond: h2::server::SendResponse<Bytes>) {
    let mut received = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    let request = TokenizeRequest::decode(&received[5..]).unwrap();
    let (text, rendered_prompt) = match request.input {
        Some(tokenize_request::Input::Text(text)) => (text, String::new()),
        Some(tokenize_request::Input::Chat(chat)) if !chat.messages.is_empty() => {
            let mut rendered: String = chat
                .messages
                .iter()
                .map(|m| format!("<{}>{}\n", m.role, m.content))
                .collect();
            rendered.push_str("<assistant>");
            (rendered.clone(), rendered)
        }
        _ => {
            let mut response = grpc_response();
            Status::invalid_argument("empty input")
                .add_header(response.headers_mut())
                .unwrap();
            let _ = respond.send_response(response, true);
            return;
        }
    };
    let response = TokenizeResponse {
        token_ids: text.bytes().map(u32::from).collect(),
        rendered_prompt,
    };
    let mut stream = respond.send_response(grpc_response(), false).unwrap();
    stream.send_data(frame(&response), false).unwrap();
    let _ = stream.send_trailers(ok_trailers());
}

async fn serve(tcp: tokio::net::TcpStream, starts: Starts) {
    let Ok(mut connection) = h2::server::handshake(tcp).await else {
        return;
    };
    while let Some(Ok((request, respond))) = connection.accept().await {
        let path = request.uri().path().to_owned();
        let body = request.into_body();
        match path.as_str() {
            "/tokenwire.v1.GenerationService/Session" => {
                tokio::spawn(session(body, respond, starts.clone()));
            }
            "/tokenwire.v1.ModelService/Tokenize" => {
                tokio::spawn(tokenize(body, respond));
            }
            other => panic!("unexpected call {other}"),
        }
    }
}

async fn fake_server() -> (Client, Starts) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let starts = Starts::default();
    let serving = starts.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve(tcp, serving.clone()));
        }
    });
    let client = Client::connect(format!("127.0.0.1:{port}")).await.unwrap();
    // Short backoffs keep the tests fast (RetryInfo delays are the server's).
    let client = client.with_retry(RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        ..RetryPolicy::default()
    });
    (client, starts)
}

fn starts_of(starts: &Starts, id: &str) -> u32 {
    starts.lock().unwrap().get(id).copied().unwrap_or(0)
}

/// Bounds a step that would hang if a retry or a give-up got lost.
async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("timed out")
}

/// Waits until the server received `count` starts of `id`, and a little
/// more for its answer to reach the client.
async fn until_started(starts: &Starts, id: &str, count: u32) {
    within(async {
        while starts_of(starts, id) < count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn start_is_re_sent_after_resource_exhausted_honouring_retry_info() {
    let (client, starts) = fake_server().await;
    let session = client.session();
    let begun = Instant::now();
    let mut generation = session.start(request::text("hi").id("busy-twice")).unwrap();
    assert_eq!(generation.attempts(), 1);
    assert!(matches!(
        within(generation.message()).await,
        Ok(Some(Event::Started(_)))
    ));
    // Two RetryInfo delays of 50 ms (not the 10-40 ms backoff) were waited.
    assert!(begun.elapsed() >= Duration::from_millis(100));
    assert_eq!(generation.attempts(), 3);
    let done = within(generation.collect()).await.unwrap();
    assert_eq!(done.text, "ok");
    assert_eq!(done.reason(), FinishReason::Length);
    assert_eq!(starts_of(&starts, "busy-twice"), 3);

    // Without RetryInfo: backoff, then served; other generations unaffected.
    let mut down = session.start(request::text("hi").id("down-once")).unwrap();
    let other = session.start(request::text("hi").id("other")).unwrap();
    assert!(matches!(
        within(down.message()).await,
        Ok(Some(Event::Started(_)))
    ));
    assert_eq!(down.attempts(), 2);
    assert_eq!(within(down.collect()).await.unwrap().text, "ok");
    assert_eq!(starts_of(&starts, "down-once"), 2);
    assert_eq!(within(other.collect()).await.unwrap().text, "ok");
    assert_eq!(starts_of(&starts, "other"), 1);
    session.close();
}

#[tokio::test]
async fn not_re_sent_after_the_first_event() {
    let (client, starts) = fake_server().await;
    let session = client.session();
    let mut generation = session
        .start(request::text("hi").id("error-after-started"))
        .unwrap();
    assert!(matches!(
        within(generation.message()).await,
        Ok(Some(Event::Started(_)))
    ));
    let error = within(generation.message()).await.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable);
    assert!(within(generation.message()).await.unwrap().is_none());
    assert_eq!(generation.attempts(), 1);
    assert_eq!(starts_of(&starts, "error-after-started"), 1);
    assert!(session.in_flight().is_empty());
}

#[tokio::test]
async fn attempts_are_capped_by_the_client_or_the_start_policy() {
    let (client, starts) = fake_server().await;
    let session = client.session();
    // The client's policy: 4 attempts, then the last error.
    let mut generation = session
        .start(request::text("hi").id("always-busy"))
        .unwrap();
    let error = within(generation.message()).await.unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted);
    assert_eq!(error.retry_delay(), Some(Duration::from_millis(10)));
    assert_eq!(generation.attempts(), 4);
    assert_eq!(starts_of(&starts, "always-busy"), 4);

    // This start's own policy: 2 attempts; disabled: 1.
    let two = RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    };
    let mut generation = session
        .start_with_retry(request::text("hi").id("always-busy"), two)
        .unwrap();
    assert!(within(generation.message()).await.is_err());
    assert_eq!(generation.attempts(), 2);
    assert_eq!(starts_of(&starts, "always-busy"), 6);
    let mut generation = session
        .start_with_retry(
            request::text("hi").id("always-busy"),
            RetryPolicy::disabled(),
        )
        .unwrap();
    assert!(within(generation.message()).await.is_err());
    assert_eq!(generation.attempts(), 1);
    assert_eq!(starts_of(&starts, "always-busy"), 7);

    // A client without retries re-sends nothing; codes not retried neither.
    let session = client.with_retry(RetryPolicy::disabled()).session();
    let mut generation = session.start(request::text("hi").id("busy-twice")).unwrap();
    assert!(within(generation.message()).await.is_err());
    assert_eq!(starts_of(&starts, "busy-twice"), 1);
    let mut generation = client
        .session()
        .start(request::text("hi").id("invalid"))
        .unwrap();
    let error = within(generation.message()).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(starts_of(&starts, "invalid"), 1);
}

#[tokio::test]
async fn not_re_sent_past_the_deadline() {
    let (client, starts) = fake_server().await;
    // A 2 s RetryInfo delay does not fit a 1 s deadline: the error at once.
    let session = client.with_deadline(Duration::from_secs(1)).session();
    let begun = Instant::now();
    let mut generation = session.start(request::text("hi").id("slow-busy")).unwrap();
    let error = within(generation.message()).await.unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted);
    assert!(begun.elapsed() < Duration::from_millis(900));
    assert_eq!(generation.attempts(), 1);
    assert_eq!(starts_of(&starts, "slow-busy"), 1);
}

#[tokio::test]
async fn not_re_sent_once_cancelled() {
    let (client, starts) = fake_server().await;
    let session = client.session();
    let mut generation = session.start(request::text("hi").id("slow-busy")).unwrap();
    until_started(&starts, "slow-busy", 1).await;
    // Waiting 2 s to re-send: the cancel ends it at once with the error.
    assert_eq!(session.in_flight(), ["slow-busy"]);
    let begun = Instant::now();
    generation.cancel().unwrap();
    let error = within(generation.message()).await.unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted);
    assert!(begun.elapsed() < Duration::from_secs(1));
    assert!(session.in_flight().is_empty());

    // Cancelled before its error event arrived: not re-sent either.
    let mut generation = session
        .start(request::text("hi").id("always-busy"))
        .unwrap();
    generation.cancel().unwrap();
    let error = within(generation.message()).await.unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted);
    assert_eq!(generation.attempts(), 1);

    // Dropped while waiting: not re-sent.
    let dropped = session.start(request::text("hi").id("slow-busy")).unwrap();
    until_started(&starts, "slow-busy", 2).await;
    drop(dropped);
    assert!(session.in_flight().is_empty());
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(starts_of(&starts, "slow-busy"), 2);
    assert_eq!(starts_of(&starts, "always-busy"), 1);
}

#[tokio::test]
async fn not_re_sent_once_the_session_closed() {
    let (client, starts) = fake_server().await;
    let session = client.session();
    let mut generation = session.start(request::text("hi").id("slow-busy")).unwrap();
    until_started(&starts, "slow-busy", 1).await;
    let begun = Instant::now();
    session.close();
    let error = within(generation.message()).await.unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted);
    assert!(begun.elapsed() < Duration::from_secs(1));
    assert_eq!(generation.attempts(), 1);
    assert!(session.in_flight().is_empty());
    assert_eq!(starts_of(&starts, "slow-busy"), 1);
}

#[tokio::test]
async fn tokenize_text_and_chat() {
    let (client, _starts) = fake_server().await;
    let text = client.tokenize("hi").await.unwrap();
    assert_eq!(text.token_ids, [u32::from(b'h'), u32::from(b'i')]);
    assert_eq!(text.rendered_prompt, "");

    let chat = client
        .tokenize_chat([("system", "Be brief."), ("user", "Hi!")])
        .await
        .unwrap();
    let rendered = "<system>Be brief.\n<user>Hi!\n<assistant>";
    assert_eq!(chat.rendered_prompt, rendered);
    let expected: Vec<u32> = rendered.bytes().map(u32::from).collect();
    assert_eq!(chat.token_ids, expected);

    // Owned strings, and the raw request.
    let messages = vec![("user".to_owned(), "x".to_owned())];
    let chat = client.tokenize_chat(messages).await.unwrap();
    assert_eq!(chat.rendered_prompt, "<user>x\n<assistant>");
    let raw = TokenizeRequest {
        input: Some(tokenize_request::Input::Chat(Chat {
            messages: vec![ChatMessage {
                role: "user".into(),
                content: "y".into(),
            }],
        })),
    };
    let chat = client.tokenize_request(raw).await.unwrap();
    assert_eq!(chat.rendered_prompt, "<user>y\n<assistant>");

    let error = client
        .tokenize_chat(Vec::<(String, String)>::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
}
