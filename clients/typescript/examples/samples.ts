// Draws three samples of one prompt in one request (n = 3): the prompt is
// processed once, the samples' deltas arrive interleaved, and each sample
// ends with its own finished event. Prints one line per sample, by index:
//   <index> <FINISH_REASON_NAME> <completion_tokens> <text-as-JSON-string>
// then `prompt_tokens <Started.prompt_tokens> <sum of the finished events' usage.prompt_tokens>`
// (the two are equal: the prompt is counted in one finished event only).
//   TOKENWIRE_TARGET=127.0.0.1:50051 node dist/examples/samples.js
// TLS and auth from the same environment variables as stream.ts.
import { ConnectError } from "@connectrpc/connect";

import { TokenwireClient, chatPrompt, optionsFromEnvironment, statusCodeName } from "../src/index.js";

const settings = optionsFromEnvironment();
const client = new TokenwireClient(settings.target, settings);
try {
  const samples = await client.completeSamples(
    {
      input: chatPrompt([{ role: "user", content: "Name a colour and say why you like it." }]),
      n: 3,
      sampling: { temperature: 1.0, seed: 7n }, // sample i draws with seed 7 + i
      stopping: { maxTokens: 16 },
    },
    { timeoutMs: 120_000 },
  );
  let summed = 0;
  for (const s of samples) {
    console.log(`${s.sampleIndex} ${s.reasonName} ${s.completionTokens} ${JSON.stringify(s.text)}`);
    summed += s.finished.usage?.promptTokens ?? 0;
  }
  // promptTokens is the started event's count, the same for every sample.
  console.log(`prompt_tokens ${samples[0]?.promptTokens ?? 0} ${summed}`);
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
