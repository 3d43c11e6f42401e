// Extracts a person as JSON that follows a JSON Schema (structured output),
// and prints two lines: the JSON (the deltas' text concatenated), then the
// finish reason's name (FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE when the
// schema allowed nothing more).
//   TOKENWIRE_TARGET=127.0.0.1:50051 node dist/examples/structured.js
// TLS and auth from the same environment variables as stream.ts.
import { ConnectError } from "@connectrpc/connect";

import { TokenwireClient, chatPrompt, jsonSchemaOutput, optionsFromEnvironment, statusCodeName } from "../src/index.js";

const PERSON = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 40 },
    birth_year: { type: "integer", minimum: 1000, maximum: 2100 },
    city: { type: "string", maxLength: 40 },
  },
  required: ["name", "birth_year", "city"],
  additionalProperties: false,
};

const settings = optionsFromEnvironment();
const client = new TokenwireClient(settings.target, settings);
try {
  const result = await client.complete(
    {
      input: chatPrompt([
        { role: "user", content: "Ada Lovelace was born in 1815 in London. Extract the person as JSON." },
      ]),
      sampling: { temperature: 0 },
      stopping: { maxTokens: 64 },
      structuredOutput: jsonSchemaOutput(PERSON), // a plain object is sent as its JSON text
    },
    { timeoutMs: 120_000 },
  );
  console.log(result.text);
  console.log(result.reasonName);
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
