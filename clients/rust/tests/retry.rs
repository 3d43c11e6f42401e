//! Retries, error details and the `Stream` impl of Generate, against a fake
//! HTTP/2 gRPC server on 127.0.0.1 whose answer depends on the request's
//! `request_id` and on how many times that id was called.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use prost::Message as _;
use tokenwire_client::pb::v1::{GenerateResponse, generate_response};
use tokenwire_client::{
    CallOptions, Client, Code, Delta, Error, ErrorDetails, Event, FinishReason, Finished,
    RetryPolicy, Started, request,
};
use tokio::net::TcpListener;
use tonic::Status;
use tonic_types::StatusExt as _;

mod common;
use common::frame;

/// Calls per request id.
type Calls = Arc<Mutex<HashMap<String, u32>>>;

fn events() -> Vec<generate_response::Event> {
    vec![
        generate_response::Event::Started(Started {
            prompt_tokens: 2,
            model: "fake".into(),
        }),
        generate_response::Event::Delta(Delta {
            token_ids: vec![1],
            text: "ok".into(),
            ..Delta::default()
        }),
        generate_response::Event::Finished(Finished {
            reason: FinishReason::Length.into(),
            ..Finished::default()
        }),
    ]
}

fn retry_after(code: Code, delay: Duration) -> Status {
    Status::with_error_details(code, "busy", ErrorDetails::with_retry_info(Some(delay)))
}

/// What the server does for call number `call` (1-based) of `request_id`:
/// the events it sends, then the status it ends with; `None` events means
/// a trailers-only answer.
fn script(request_id: &str, call: u32) -> (Option<Vec<generate_response::Event>>, Status) {
    let ok = || (Some(events()), Status::ok(""));
    match request_id {
        // Queue full twice (RetryInfo 20 ms), then served.
        "busy-then-ok" if call <= 2 => (
            None,
            retry_after(Code::ResourceExhausted, Duration::from_millis(20)),
        ),
        // Headers, then UNAVAILABLE before any event: retried.
        "down-before-first" if call == 1 => (Some(vec![]), Status::unavailable("loading")),
        // One event, then UNAVAILABLE: never replayed.
        "down-after-first" => (Some(events()[..1].to_vec()), Status::unavailable("gone")),
        "always-down" => (None, Status::unavailable("down")),
        "long-retry-info" => (
            None,
            retry_after(Code::ResourceExhausted, Duration::from_secs(60)),
        ),
        "slow-retry-info" => (None, retry_after(Code::Unavailable, Duration::from_secs(2))),
        "invalid" => {
            let mut details =
                ErrorDetails::with_bad_request_violation("sampling.top_p", "must be in (0, 1]");
            details.set_error_info("INVALID_SAMPLING", "tokenwire", HashMap::new());
            (
                None,
                Status::with_error_details(Code::InvalidArgument, "bad request", details),
            )
        }
        // Ends without a finished event.
        "no-finish" => (Some(events()[..2].to_vec()), Status::ok("")),
        _ => ok(),
    }
}

async fn serve(tcp: tokio::net::TcpStream, calls: Calls) {
    let Ok(mut connection) = h2::server::handshake(tcp).await else {
        return;
    };
    while let Some(Ok((request, mut respond))) = connection.accept().await {
        let calls = calls.clone();
        tokio::spawn(async move {
            let mut body = request.into_body();
            let mut received = Vec::new();
            while let Some(Ok(chunk)) = body.data().await {
                let _ = body.flow_control().release_capacity(chunk.len());
                received.extend_from_slice(&chunk);
            }
            let request =
                tokenwire_client::GenerateRequest::decode(&received[5..]).expect("a request");
            let id = request.request_id.clone();
            let call = {
                let mut calls = calls.lock().unwrap();
                let count = calls.entry(id.clone()).or_default();
                *count += 1;
                *count
            };
            let (events, status) = script(&id, call);
            let mut response = http::Response::builder()
                .header("content-type", "application/grpc")
                .body(())
                .unwrap();
            let Some(events) = events else {
                status.add_header(response.headers_mut()).unwrap();
                let _ = respond.send_response(response, true);
                return;
            };
            let mut stream = respond.send_response(response, false).unwrap();
            for event in events {
                let message = GenerateResponse {
                    request_id: id.clone(),
                    event: Some(event),
                };
                stream.send_data(frame(&message), false).unwrap();
            }
            let mut trailers = http::HeaderMap::new();
            status.add_header(&mut trailers).unwrap();
            let _ = stream.send_trailers(trailers);
        });
    }
}

async fn fake_server() -> (Client, Calls) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let calls = Calls::default();
    let serving = calls.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve(tcp, serving.clone()));
        }
    });
    let client = Client::connect(format!("127.0.0.1:{port}")).await.unwrap();
    // Short backoffs keep the tests fast.
    let client = client.with_retry(RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        ..RetryPolicy::default()
    });
    (client, calls)
}

fn calls_of(calls: &Calls, id: &str) -> u32 {
    calls.lock().unwrap().get(id).copied().unwrap_or(0)
}

#[tokio::test]
async fn retries_honour_retry_info_before_the_first_event() {
    let (client, calls) = fake_server().await;
    let generation = client
        .generate(request::text("hi").id("busy-then-ok"))
        .await
        .unwrap();
    assert_eq!(generation.attempts(), 3);
    let done = generation.collect().await.unwrap();
    assert_eq!(done.text, "ok");
    assert_eq!(calls_of(&calls, "busy-then-ok"), 3);

    let done = client
        .complete(request::text("hi").id("down-before-first"))
        .await
        .unwrap();
    assert_eq!(done.text, "ok");
    assert_eq!(calls_of(&calls, "down-before-first"), 2);
}

#[tokio::test]
async fn no_retry_after_the_first_event() {
    let (client, calls) = fake_server().await;
    let mut generation = client
        .generate(request::text("hi").id("down-after-first"))
        .await
        .unwrap();
    assert!(matches!(
        generation.message().await,
        Ok(Some(Event::Started(_)))
    ));
    let error = generation.message().await.unwrap_err();
    assert_eq!(error.code(), Code::Unavailable);
    assert_eq!(error.to_string(), "UNAVAILABLE: gone");
    // The stream ends after an error.
    assert!(generation.message().await.unwrap().is_none());
    assert_eq!(calls_of(&calls, "down-after-first"), 1);
}

#[tokio::test]
async fn attempts_retry_info_cap_deadline_and_per_call_policy() {
    let (client, calls) = fake_server().await;
    // max_attempts (4) attempts, then the last error.
    let error = client
        .generate(request::text("hi").id("always-down"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unavailable);
    assert_eq!(calls_of(&calls, "always-down"), 4);

    // Per call: retries off.
    let error = client
        .generate_with(
            request::text("hi").id("always-down"),
            &CallOptions::new().retry(RetryPolicy::disabled()),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unavailable);
    assert_eq!(calls_of(&calls, "always-down"), 5);

    // A RetryInfo delay above the cap (30 s) is not waited for.
    let error = client
        .generate(request::text("hi").id("long-retry-info"))
        .await
        .unwrap_err();
    assert_eq!(error.retry_delay(), Some(Duration::from_secs(60)));
    assert_eq!(calls_of(&calls, "long-retry-info"), 1);

    // A wait past the deadline is not made: the error comes at once.
    let started = std::time::Instant::now();
    let error = client
        .with_deadline(Duration::from_millis(500))
        .generate(request::text("hi").id("slow-retry-info"))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(400));
    assert_eq!(error.retry_delay(), Some(Duration::from_secs(2)));
    assert_eq!(calls_of(&calls, "slow-retry-info"), 1);
}

#[tokio::test]
async fn error_details_are_decoded() {
    let (client, calls) = fake_server().await;
    let error = client
        .complete(request::text("hi").id("invalid"))
        .await
        .unwrap_err();
    assert!(matches!(&error, Error::Status(_)), "{error:?}");
    assert_eq!(error.code(), Code::InvalidArgument);
    let violations = error.field_violations();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "sampling.top_p");
    assert_eq!(error.reason().as_deref(), Some("INVALID_SAMPLING"));
    assert_eq!(
        error
            .status()
            .unwrap()
            .get_error_details()
            .bad_request()
            .map(|b| b.field_violations.len()),
        Some(1)
    );
    // INVALID_ARGUMENT is not retried.
    assert_eq!(calls_of(&calls, "invalid"), 1);
}

#[tokio::test]
async fn a_stream_that_ends_early_is_a_protocol_violation() {
    let (client, _) = fake_server().await;
    let error = client
        .complete(request::text("hi").id("no-finish"))
        .await
        .unwrap_err();
    let Error::ProtocolViolation(message) = &error else {
        panic!("expected a protocol violation, got {error:?}");
    };
    assert_eq!(message, "Generate stream ended without a finished event");
}

#[tokio::test]
async fn generation_is_a_stream() {
    let (client, _) = fake_server().await;
    // StreamExt::next and collect.
    let generation = client.generate(request::text("hi").id("ok")).await.unwrap();
    let events: Vec<_> = futures_util::StreamExt::collect(generation).await;
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(Result::is_ok));

    // In a select! next to a timer.
    let mut generation = client.generate(request::text("hi").id("ok")).await.unwrap();
    let mut text = String::new();
    let timeout = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(timeout);
    loop {
        tokio::select! {
            event = generation.next() => match event {
                Some(Ok(Event::Delta(delta))) => text.push_str(&delta.text),
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("{error}"),
                None => break,
            },
            () = &mut timeout => panic!("timed out"),
        }
    }
    assert_eq!(text, "ok");
}
