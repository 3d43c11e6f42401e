//! Extracts a person as JSON that follows a JSON Schema (structured output)
//! and prints two lines: the JSON (every delta's text, concatenated), then
//! the finish reason's name (`FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE` when
//! the schema allowed nothing more).
//!
//! Usage: `TOKENWIRE_TARGET=127.0.0.1:50051 cargo run --example structured`
//! (`TOKENWIRE_TLS_CA`, `TOKENWIRE_CLIENT_CERT`, `TOKENWIRE_CLIENT_KEY` and
//! `TOKENWIRE_TOKEN` as for the stream example). A failure is reported on
//! stderr as `error: ...` with exit status 1.

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use tokenwire_client::{Client, ConnectOptions, ENV_TARGET, Event, request};

const PROMPT: &str = "Ada Lovelace was born in 1815 in London. Extract the person as JSON.";

/// The shape of the answer: the other kinds of structured output are
/// `.json_object()`, `.regex(..)`, `.lark_grammar(..)`, `.gbnf_grammar(..)`
/// and `.choice([..])`.
const SCHEMA: &str = r#"{"type": "object", "properties": {"name": {"type": "string", "maxLength": 40}, "birth_year": {"type": "integer", "minimum": 1000, "maximum": 2100}, "city": {"type": "string", "maxLength": 40}}, "required": ["name", "birth_year", "city"], "additionalProperties": false}"#;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", describe(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let target = std::env::var(ENV_TARGET).unwrap_or_else(|_| "127.0.0.1:50051".into());
    let client = Client::connect_with(&target, &ConnectOptions::from_env())
        .await?
        .with_deadline(Duration::from_secs(120));

    let req = request::chat_user(PROMPT)
        .greedy()
        .max_tokens(64)
        .json_schema(SCHEMA);
    let mut generation = client.generate(req).await?;
    let mut json = String::new();
    let mut reason = None;
    while let Some(event) = generation.message().await? {
        match event {
            Event::Started(_) => {}
            Event::Delta(delta) => json.push_str(&delta.text),
            Event::Finished(finished) => reason = Some(finished.reason()),
        }
    }
    let reason = reason.ok_or("the generation ended without a finish reason")?;
    println!("{json}");
    println!("{}", reason.as_str_name());
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
