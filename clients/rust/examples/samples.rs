//! Asks for three samples of one prompt (`n` = 3, temperature 1, seed 7: sample
//! `i` draws with seed 7 + i) and prints one line per sample, in index order:
//! `<index> <FINISH_REASON_NAME> <completion_tokens> <text as JSON>`, then
//! `prompt_tokens <Started.prompt_tokens> <sum of the finished events'
//! usage.prompt_tokens>` (equal: the prompt is counted once, in the first
//! sample to finish).
//!
//! Usage: `TOKENWIRE_TARGET=127.0.0.1:50051 cargo run --example samples`
//! (`TOKENWIRE_TLS_CA`, `TOKENWIRE_CLIENT_CERT`, `TOKENWIRE_CLIENT_KEY` and
//! `TOKENWIRE_TOKEN` as for the stream example). A failure is reported on
//! stderr as `error: ...` with exit status 1.

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use tokenwire_client::{Client, ConnectOptions, ENV_TARGET, request};

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

    let req = request::chat_user("Name a colour and say why you like it.")
        .n(3)
        .temperature(1.0)
        .seed(7)
        .max_tokens(16);
    // One Completion per sample, in sample_index order; the samples' deltas
    // arrive interleaved on one stream (`client.generate` shows them as they
    // come, each with its `sample_index`).
    let samples = client.complete_samples(req).await?;

    let mut prompt_tokens = 0;
    for sample in &samples {
        println!(
            "{} {} {} {}",
            sample.sample_index(),
            sample.reason().as_str_name(),
            sample.completion_tokens(),
            serde_json::to_string(&sample.text)?
        );
        prompt_tokens += sample.finished.usage.map_or(0, |usage| usage.prompt_tokens);
    }
    let started = samples
        .first()
        .and_then(|sample| sample.started.as_ref())
        .ok_or("the generation has no started event")?;
    println!("prompt_tokens {} {prompt_tokens}", started.prompt_tokens);
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
