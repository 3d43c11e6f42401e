//! Retries and error details: a busy server's `RESOURCE_EXHAUSTED` is
//! retried after its `RetryInfo` delay, and a bad request's field violation
//! is read from the error.
//!
//! Usage: `TOKENWIRE_TARGET=127.0.0.1:50051 cargo run --example retry`
//! (`TOKENWIRE_TLS_CA`, `TOKENWIRE_CLIENT_CERT`, `TOKENWIRE_CLIENT_KEY` and
//! `TOKENWIRE_TOKEN` as for the stream example).
//!
//! Prints `attempts <n>` and `completion_tokens <k>` for a short generation
//! (retried, before its first event only, while the server is busy), then
//! `violation <field> <description>` for each field violation of a request
//! with top_p = 5. A call that still fails prints `error: ...` on stderr and
//! exits with status 1.

use std::process::ExitCode;

use tokenwire_client::{Client, Code, ConnectOptions, ENV_TARGET, RetryPolicy, request};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let target = std::env::var(ENV_TARGET).unwrap_or_else(|_| "127.0.0.1:50051".into());
    let client = Client::connect_with(&target, &ConnectOptions::from_env())
        .await?
        .with_retry(RetryPolicy {
            max_attempts: 10,
            ..RetryPolicy::default()
        });

    let generation = client
        .generate(request::text("Hello").max_tokens(8))
        .await?;
    let attempts = generation.attempts();
    let completion = generation.collect().await?;
    println!("attempts {attempts}");
    println!("completion_tokens {}", completion.completion_tokens());

    match client.complete(request::text("Hello").top_p(5.0)).await {
        Err(error) if error.code() == Code::InvalidArgument => {
            for violation in error.field_violations() {
                println!("violation {} {}", violation.field, violation.description);
            }
            Ok(())
        }
        Err(error) => Err(error.into()),
        Ok(_) => Err("top_p = 5 was accepted".into()),
    }
}
