// Streams one completion to stdout.
//   TOKENWIRE_TARGET=127.0.0.1:50051 node dist/examples/stream.js "What is the capital of France?"
import { TokenwireClient, chatPrompt, finishReasonName } from "../src/index.js";

const target = process.env["TOKENWIRE_TARGET"] ?? "127.0.0.1:50051";
const prompt = process.argv.slice(2).join(" ") || "What is the capital of France?";

const client = new TokenwireClient(target);
try {
  const events = client.generate(
    {
      input: chatPrompt([{ role: "user", content: prompt }]),
      sampling: { temperature: 0 },
      stopping: { maxTokens: 32 },
    },
    { timeoutMs: 60_000 },
  );
  for await (const event of events) {
    switch (event.case) {
      case "delta":
        process.stdout.write(event.value.text);
        break;
      case "finished":
        process.stdout.write("\n");
        console.error(
          `[${event.requestId}] ${finishReasonName(event.value.reason)}, ` +
            `${event.value.usage?.completionTokens ?? 0} tokens`,
        );
        break;
      case "started":
        break;
    }
  }
} finally {
  client.close();
}
