// Runs two generations on one Session stream, cancels one after its first
// delta, and prints a line per generation:
//   <request_id> <FINISH_REASON_NAME> <completion_tokens> <text-as-JSON-string>
//   TOKENWIRE_TARGET=127.0.0.1:50051 node dist/examples/session.js
// TLS and auth from the same environment variables as stream.ts.
import { TokenwireClient, chatPrompt, optionsFromEnvironment } from "../src/index.js";
import type { GenerationResult } from "../src/index.js";

const settings = optionsFromEnvironment();
const client = new TokenwireClient(settings.target, settings);
try {
  const session = client.session({ timeoutMs: 120_000 });
  const question = chatPrompt([{ role: "user", content: "Why is the sky blue?" }]);
  const keep = session.start({
    requestId: "keep",
    input: question,
    sampling: { temperature: 0 },
    stopping: { maxTokens: 12 },
  });
  const drop = session.start({
    requestId: "drop",
    input: question,
    sampling: { temperature: 0 },
    stopping: { maxTokens: 32 },
  });

  // Cancel "drop" as soon as its first delta arrives; its stream still ends
  // with a `finished` event (FINISH_REASON_CANCELLED) carrying its usage.
  for await (const event of drop) {
    if (event.case === "delta") {
      drop.cancel();
      break;
    }
  }

  const results: GenerationResult[] = await Promise.all([keep.result(), drop.result()]);
  session.close();
  await session.closed;
  for (const r of results) {
    console.log(`${r.requestId} ${r.reasonName} ${r.completionTokens} ${JSON.stringify(r.text)}`);
  }
} finally {
  client.close();
}
