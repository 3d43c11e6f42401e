// Retries and typed errors. Generates the text prompt "Hello" (8 tokens at
// most) with a retry policy of up to 10 attempts: a server that is busy
// answers RESOURCE_EXHAUSTED with a google.rpc.RetryInfo delay, which the
// client waits for before trying again. Then sends a request with an invalid
// sampling.top_p and reads the INVALID_ARGUMENT error's field violations.
// Prints
//   attempts <Generate calls made for the first request>
//   completion_tokens <usage.completion_tokens of its finished event>
//   violation <field> <description>      (one line per field violation)
//   TOKENWIRE_TARGET=127.0.0.1:50051 node dist/examples/retry.js
// TLS and auth from the same environment variables as stream.ts.
import { Code, ConnectError } from "@connectrpc/connect";

import { TokenwireClient, TokenwireError, optionsFromEnvironment, statusCodeName, textPrompt } from "../src/index.js";

const settings = optionsFromEnvironment();
const client = new TokenwireClient(settings.target, {
  ...settings,
  // RetryInfo delays (the server's) are honoured; backoff applies without one.
  retry: { maxAttempts: 10, maxRetryInfoDelayMs: 30_000 },
});
try {
  // 1. Retried while refused before its first event; read to the end.
  const stream = client.generate({ input: textPrompt("Hello"), stopping: { maxTokens: 8 } }, { timeoutMs: 120_000 });
  let completionTokens: number | undefined;
  for await (const event of stream) {
    if (event.case === "finished") {
      completionTokens = event.value.usage?.completionTokens ?? 0;
    }
  }
  if (completionTokens === undefined) {
    throw new Error("the generation ended without a finished event");
  }
  console.log(`attempts ${stream.attempts}`);
  console.log(`completion_tokens ${completionTokens}`);

  // 2. An invalid request: the error's google.rpc.BadRequest field violations.
  let refused: TokenwireError | undefined;
  try {
    await client.complete(
      { input: textPrompt("Hello"), sampling: { topP: 5 }, stopping: { maxTokens: 8 } },
      { timeoutMs: 30_000 },
    );
  } catch (error) {
    if (!(error instanceof TokenwireError) || error.code !== Code.InvalidArgument) {
      throw error;
    }
    refused = error;
  }
  if (refused === undefined) {
    throw new Error("a request with sampling.top_p = 5 was accepted");
  }
  if (refused.fieldViolations.length === 0) {
    throw new Error(`INVALID_ARGUMENT without field violations: ${refused.rawMessage}`);
  }
  for (const violation of refused.fieldViolations) {
    console.log(`violation ${violation.field} ${violation.description}`);
  }
} catch (error) {
  const message =
    error instanceof ConnectError
      ? `${statusCodeName(error.code)}: ${error.rawMessage}`
      : error instanceof Error
        ? error.message
        : String(error);
  console.error(`error: ${message}`);
  process.exitCode = 1;
} finally {
  client.close();
}
