//! Streams one completion to stdout.
//!
//! Usage: `TOKENWIRE_TARGET=127.0.0.1:50051 cargo run --example stream -- [PROMPT]`
//! (default prompt: "What is the capital of France?"; greedy, at most 32
//! tokens).

use std::io::Write as _;
use std::time::Duration;

use tokenwire_client::{Client, Event, request};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = std::env::var("TOKENWIRE_TARGET").unwrap_or_else(|_| "127.0.0.1:50051".into());
    let mut prompt = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    if prompt.is_empty() {
        prompt = "What is the capital of France?".into();
    }

    let client = Client::connect(&target)
        .await?
        .with_deadline(Duration::from_secs(60));
    let req = request::chat_user(prompt).greedy().max_tokens(32);
    let mut generation = client.generate(req).await?;

    let mut stdout = std::io::stdout();
    while let Some(event) = generation.next().await? {
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
