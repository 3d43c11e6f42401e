// Streams one completion to stdout.
//   TOKENWIRE_TARGET=127.0.0.1:50051 node dist/examples/stream.js "What is the capital of France?"
// TLS and auth from the environment: TOKENWIRE_TLS_CA (CA file; turns TLS on),
// TOKENWIRE_CLIENT_CERT + TOKENWIRE_CLIENT_KEY (client certificate, mTLS),
// TOKENWIRE_TOKEN (bearer token). TOKENWIRE_TRACEPARENT (a W3C traceparent) is sent as the
// call's traceparent header, so the server's span continues that trace (an OpenTelemetry
// app would fill the headers with propagation.inject instead).
import { ConnectError } from "@connectrpc/connect";

import { TokenwireClient, chatPrompt, finishReasonName, optionsFromEnvironment, statusCodeName } from "../src/index.js";

function traceHeaders(): Record<string, string> {
  const traceparent = process.env.TOKENWIRE_TRACEPARENT;
  return traceparent ? { traceparent } : {};
}

const prompt = process.argv.slice(2).join(" ") || "What is the capital of France?";

const settings = optionsFromEnvironment();
const client = new TokenwireClient(settings.target, settings);
try {
  const events = client.generate(
    {
      input: chatPrompt([{ role: "user", content: prompt }]),
      sampling: { temperature: 0 },
      stopping: { maxTokens: 32 },
    },
    { timeoutMs: 60_000, headers: traceHeaders() },
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
} catch (error) {
  if (!(error instanceof ConnectError)) {
    throw error;
  }
  console.error(`error: ${statusCodeName(error.code)}: ${error.rawMessage}`);
  process.exitCode = 1;
} finally {
  client.close();
}
