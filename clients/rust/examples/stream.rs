//! Streams one completion to stdout.
//!
//! Usage: `TOKENWIRE_TARGET=127.0.0.1:50051 cargo run --example stream -- [PROMPT]`
//! (default prompt: "What is the capital of France?"; greedy, at most 32
//! tokens).
//!
//! For a server with TLS or token auth set `TOKENWIRE_TLS_CA` (a PEM CA
//! bundle; setting it turns TLS on), `TOKENWIRE_CLIENT_CERT` and
//! `TOKENWIRE_CLIENT_KEY` (a client certificate for mTLS) and `TOKENWIRE_TOKEN`
//! (a bearer token). A failed call is reported on stderr as
//! `stream: <CODE>: <message>` (for example `UNAUTHENTICATED`) with exit
//! status 1. `TOKENWIRE_TRACEPARENT` (a W3C traceparent) is sent with the call as
//! `traceparent` metadata, so the server's span continues that trace.

use std::error::Error;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use tokenwire_client::{Client, ConnectOptions, ENV_TARGET, Event, request};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("stream: {}", describe(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let target = std::env::var(ENV_TARGET).unwrap_or_else(|_| "127.0.0.1:50051".into());
    let mut prompt = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    if prompt.is_empty() {
        prompt = "What is the capital of France?".into();
    }

    let mut client = Client::connect_with(&target, &ConnectOptions::from_env())
        .await?
        .with_deadline(Duration::from_secs(60));
    // To continue a trace: the W3C traceparent goes with the call as metadata.
    if let Ok(traceparent) = std::env::var("TOKENWIRE_TRACEPARENT") {
        client = client.with_metadata("traceparent", &traceparent)?;
    }
    let req = request::chat_user(prompt).greedy().max_tokens(32);
    let mut generation = client.generate(req).await?;

    let mut stdout = std::io::stdout();
    while let Some(event) = generation.message().await? {
        match event {
            Event::Started(_) => {}
            Event::Delta(delta) => {
                stdout.write_all(delta.text.as_bytes())?;
                stdout.flush()?;
            }
            Event::Finished(finished) => {
                writeln!(stdout)?;
                let tokens = finished.usage.map_or(0, |usage| usage.completion_tokens);
                eprintln!(
                    "[{} {} {tokens} tokens]",
                    generation.request_id(),
                    finished.reason().as_str_name()
                );
            }
        }
    }
    Ok(())
}

/// A gRPC status as `CODE: message`; any other error with its causes.
fn describe(error: &(dyn Error + 'static)) -> String {
    if let Some(error) = error.downcast_ref::<tokenwire_client::Error>()
        && error.status().is_some()
    {
        return format!("{}: {}", error.code_name(), error.message());
    }
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
