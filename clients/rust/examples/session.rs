//! Starts two generations on one Session stream, cancels one after its first
//! delta, and prints one line per generation:
//! `<request_id> <FINISH_REASON_NAME> <completion_tokens> <text-as-JSON>`.
//!
//! Usage: `TOKENWIRE_TARGET=127.0.0.1:50051 cargo run --example session`
//! (`TOKENWIRE_TLS_CA`, `TOKENWIRE_CLIENT_CERT`, `TOKENWIRE_CLIENT_KEY` and
//! `TOKENWIRE_TOKEN` as for the stream example).

use std::time::Duration;

use tokenwire_client::{Client, Completion, ConnectOptions, ENV_TARGET, Event, request};

fn report(completion: &Completion, text: &str) -> Result<String, serde_json::Error> {
    Ok(format!(
        "{} {} {} {}",
        completion.request_id,
        completion.reason().as_str_name(),
        completion.completion_tokens(),
        serde_json::to_string(text)?
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = std::env::var(ENV_TARGET).unwrap_or_else(|_| "127.0.0.1:50051".into());
    let client = Client::connect_with(&target, &ConnectOptions::from_env())
        .await?
        .with_deadline(Duration::from_secs(120));

    let session = client.session();
    let keep = session.start(
        request::text("The sky is")
            .id("keep")
            .greedy()
            .max_tokens(12),
    )?;
    let mut drop = session.start(
        request::text("Once upon a time")
            .id("drop")
            .greedy()
            .max_tokens(32),
    )?;

    // Read "drop" up to its first delta, then cancel it.
    let mut drop_text = String::new();
    while let Some(event) = drop.message().await? {
        if let Event::Delta(delta) = event {
            drop_text.push_str(&delta.text);
            drop.cancel()?;
            break;
        }
    }
    // No more requests: the server ends the stream once both have finished.
    session.close();

    let (keep, drop) = tokio::try_join!(keep.collect(), drop.collect())?;
    drop_text.push_str(&drop.text);
    println!("{}", report(&keep, &keep.text)?);
    println!("{}", report(&drop, &drop_text)?);
    Ok(())
}
