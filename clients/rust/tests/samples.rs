//! Generate streams of several samples (`n` > 1) against a fake HTTP/2 gRPC
//! server on 127.0.0.1 that answers each Generate call with scripted events
//! (chosen by the request's `request_id`), then status OK.

use std::sync::{Arc, Mutex};

use prost::Message as _;
use tokenwire_client::pb::v1::{GenerateResponse, Usage, generate_response};
use tokenwire_client::{Client, Code, Delta, Event, FinishReason, Finished, Started, request};
use tokio::net::TcpListener;

mod common;
use common::frame;

/// The `request_id` and `n` of every Generate call the fake server received.
type Calls = Arc<Mutex<Vec<(String, Option<u32>)>>>;

fn started() -> generate_response::Event {
    generate_response::Event::Started(Started {
        prompt_tokens: 7,
        model: "fake".into(),
    })
}

fn delta(sample_index: u32, id: u32, text: &str) -> generate_response::Event {
    generate_response::Event::Delta(Delta {
        token_ids: vec![id],
        text: text.into(),
        sample_index,
        ..Delta::default()
    })
}

fn finished(sample_index: u32, prompt_tokens: u32) -> generate_response::Event {
    generate_response::Event::Finished(Finished {
        reason: FinishReason::Length.into(),
        usage: Some(Usage {
            prompt_tokens,
            completion_tokens: 1,
            ..Usage::default()
        }),
        sample_index,
        ..Finished::default()
    })
}

/// What the fake server sends for a request id.
fn script(request_id: &str) -> Vec<generate_response::Event> {
    match request_id {
        // Three samples, interleaved; sample 1 finishes first.
        "three" => vec![
            started(),
            delta(0, 10, "a"),
            delta(1, 20, "B"),
            delta(2, 30, "c"),
            finished(1, 7),
            delta(0, 11, "b"),
            finished(0, 0),
            delta(2, 31, "d"),
            finished(2, 0),
        ],
        // n = 3, but the stream ends after two samples finished.
        "short" => vec![
            started(),
            delta(0, 10, "a"),
            finished(0, 7),
            delta(2, 30, "c"),
            finished(2, 0),
        ],
        // One sample, as before n existed.
        _ => vec![started(), delta(0, 10, "x"), finished(0, 7)],
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
            calls
                .lock()
                .unwrap()
                .push((request.request_id.clone(), request.n));
            let response = http::Response::builder()
                .header("content-type", "application/grpc")
                .body(())
                .unwrap();
            let mut stream = respond.send_response(response, false).unwrap();
            for event in script(&request.request_id) {
                let message = GenerateResponse {
                    request_id: request.request_id.clone(),
                    event: Some(event),
                };
                stream.send_data(frame(&message), false).unwrap();
            }
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().unwrap());
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
    (client, calls)
}

#[tokio::test]
async fn stream_goes_on_until_every_sample_finished() {
    let (client, _) = fake_server().await;
    let req = request::text("hi").id("three").n(3).temperature(1.0);
    let mut generation = client.generate(req).await.unwrap();
    assert_eq!(generation.samples(), 3);
    let mut seen = Vec::new();
    while let Some(event) = generation.message().await.unwrap() {
        seen.push(match event {
            Event::Started(_) => "s".to_owned(),
            Event::Delta(delta) => format!("d{}", delta.sample_index),
            Event::Finished(finished) => format!("f{}", finished.sample_index),
        });
    }
    assert_eq!(seen, ["s", "d0", "d1", "d2", "f1", "d0", "f0", "d2", "f2"]);
    // Finished: no more events.
    assert!(generation.message().await.unwrap().is_none());
}

#[tokio::test]
async fn complete_samples_gives_one_output_per_sample() {
    let (client, calls) = fake_server().await;
    let req = request::text("hi").id("three").n(3).temperature(1.0);
    let samples = client.complete_samples(req).await.unwrap();
    let summary: Vec<_> = samples
        .iter()
        .map(|c| (c.sample_index(), c.text.as_str(), c.token_ids.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (0, "ab", vec![10, 11]),
            (1, "B", vec![20]),
            (2, "cd", vec![30, 31])
        ]
    );
    let prompt: u32 = samples
        .iter()
        .map(|c| c.finished.usage.unwrap().prompt_tokens)
        .sum();
    assert_eq!(prompt, samples[0].started.as_ref().unwrap().prompt_tokens);
    assert_eq!(*calls.lock().unwrap(), [("three".to_owned(), Some(3))]);
}

#[tokio::test]
async fn a_stream_without_every_finished_event_is_an_error() {
    let (client, _) = fake_server().await;
    let req = request::text("hi").id("short").n(3).temperature(1.0);
    let mut generation = client.generate(req).await.unwrap();
    let mut finished = 0;
    let error = loop {
        match generation.message().await {
            Ok(Some(Event::Finished(_))) => finished += 1,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream must not end quietly"),
            Err(status) => break status,
        }
    };
    assert_eq!(finished, 2);
    // A broken contract is a protocol violation (code UNKNOWN), not a status.
    assert!(
        matches!(&error, tokenwire_client::Error::ProtocolViolation(_)),
        "{error:?}"
    );
    assert_eq!(error.code(), Code::Unknown);
    assert_eq!(
        error.message(),
        "Generate stream ended without a finished event for sample(s) 1 (2 of 3 finished)"
    );
    let collected = client
        .complete_samples(request::text("hi").id("short").n(3).temperature(1.0))
        .await
        .unwrap_err();
    assert!(collected.is_protocol_violation(), "{collected:?}");
}

#[tokio::test]
async fn complete_refuses_several_samples_before_sending() {
    let (client, calls) = fake_server().await;
    let refused = client
        .complete(request::text("hi").id("three").n(3).temperature(1.0))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("complete_samples()"),
        "{refused:?}"
    );
    assert!(calls.lock().unwrap().is_empty());
    // One sample, said or not: complete() as before.
    for n in [None, Some(1)] {
        let mut req = request::text("hi").id("one");
        if let Some(n) = n {
            req = req.n(n);
        }
        let done = client.complete(req).await.unwrap();
        assert_eq!(
            (done.text.as_str(), done.reason()),
            ("x", FinishReason::Length)
        );
    }
    // collect() on a Generation of several samples is refused too.
    let generation = client
        .generate(request::text("hi").id("three").n(3).temperature(1.0))
        .await
        .unwrap();
    assert_eq!(
        generation.collect().await.unwrap_err().code(),
        Code::InvalidArgument
    );
}
