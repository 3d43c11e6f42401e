// Unit tests of the wrapper against an in-memory fake GenerationService
// (no server needed): node --test dist/test/
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";

import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";

import {
  FinishReason,
  GenerationError,
  GenerationService,
  Grammar_Syntax,
  TokenwireClient,
  choiceOutput,
  collect,
  collectSamples,
  finishReasonName,
  gbnfGrammarOutput,
  jsonObjectOutput,
  jsonSchemaOutput,
  larkGrammarOutput,
  logitBias,
  regexOutput,
  sampleCount,
  textPrompt,
} from "../src/index.js";
import type { GenerateRequest, SessionRequest, SessionResponseSchema } from "../src/index.js";
import { AsyncQueue } from "../src/queue.js";

type SessionResponseInit = MessageInitShape<typeof SessionResponseSchema>;
const WORDS = ["one", " two", " three", " four", " five", " six", " seven", " eight"];

/** Requests the fake service received, last one last. */
const received: GenerateRequest[] = [];

/**
 * Events of a fake generation: one word per token, 2 ms apart, until max
 * tokens or cancel. With n > 1, sample s makes max - s tokens (so the last
 * sample finishes first) of the words shifted by s, the samples' deltas
 * interleaved; the first finished event to go out counts the prompt, the
 * others 0. Request ids "lose-last-sample" (no finished event for the last
 * sample) and "bad-index" (a delta for sample n) misbehave on purpose.
 */
async function* fakeEvents(
  request: GenerateRequest,
  cancelled: () => boolean,
): AsyncGenerator<SessionResponseInit> {
  received.push(request);
  const requestId = request.requestId || "generated-id";
  if (request.input.case === undefined) {
    yield { requestId, event: { case: "error", value: { code: Code.InvalidArgument, message: "input is required" } } };
    return;
  }
  const n = request.n || 1;
  yield { requestId, event: { case: "started", value: { promptTokens: 3, model: "fake" } } };
  const max = request.stopping?.maxTokens ?? WORDS.length;
  const produced = Array.from({ length: n }, () => 0);
  const running = new Set(produced.keys());
  let promptTokens = 3;
  while (running.size > 0) {
    await sleep(2);
    const stop = cancelled();
    for (const s of [...running]) {
      const done = stop || (produced[s] ?? 0) >= Math.max(1, max - s);
      if (!done) {
        const i = produced[s] ?? 0;
        const text = WORDS[(i + s) % WORDS.length] ?? "";
        yield { requestId, event: { case: "delta", value: { tokenIds: [i + 100 * s], text, sampleIndex: s } } };
        produced[s] = i + 1;
        continue;
      }
      running.delete(s);
      if (requestId === "lose-last-sample" && s === n - 1) {
        continue;
      }
      yield {
        requestId,
        event: {
          case: "finished",
          value: {
            reason: stop ? FinishReason.CANCELLED : FinishReason.LENGTH,
            usage: { promptTokens, completionTokens: produced[s] ?? 0 },
            sampleIndex: s,
          },
        },
      };
      promptTokens = 0;
    }
    if (requestId === "bad-index") {
      yield { requestId, event: { case: "delta", value: { tokenIds: [9], text: "?", sampleIndex: n } } };
    }
  }
}

function fakeClient(): TokenwireClient {
  const transport = createRouterTransport(({ service }) => {
    service(GenerationService, {
      async *generate(request) {
        for await (const response of fakeEvents(request, () => false)) {
          if (response.event?.case !== "error") {
            yield response as never;
          } else {
            throw new ConnectError(response.event.value.message ?? "", Code.InvalidArgument);
          }
        }
      },
      async *session(requests: AsyncIterable<SessionRequest>) {
        const out = new AsyncQueue<SessionResponseInit>();
        const cancelled = new Set<string>();
        const running: Promise<void>[] = [];
        const reader = (async () => {
          for await (const request of requests) {
            if (request.action.case === "start") {
              const start = request.action.value;
              running.push(
                (async () => {
                  for await (const response of fakeEvents(start, () => cancelled.has(start.requestId))) {
                    out.push(response);
                  }
                })(),
              );
            } else if (request.action.case === "cancel") {
              cancelled.add(request.action.value.requestId);
            }
          }
          await Promise.all(running);
          out.end();
        })();
        yield* out;
        await reader;
      },
      abort(request) {
        return { cancelled: request.requestId === "running" };
      },
    });
  });
  return new TokenwireClient("unused:0", { transport });
}

test("generate streams started, deltas and finished", async () => {
  const client = fakeClient();
  const cases: string[] = [];
  for await (const event of client.generate({ input: textPrompt("hi"), stopping: { maxTokens: 3 } })) {
    cases.push(event.case);
  }
  assert.deepEqual(cases, ["started", "delta", "delta", "delta", "finished"]);
});

test("complete collects text, ids and the finish reason", async () => {
  const result = await fakeClient().complete({ requestId: "r1", input: textPrompt("hi"), stopping: { maxTokens: 2 } });
  assert.equal(result.requestId, "r1");
  assert.equal(result.text, "one two");
  assert.deepEqual(result.tokenIds, [0, 1]);
  assert.equal(result.reasonName, "FINISH_REASON_LENGTH");
  assert.equal(result.completionTokens, 2);
  assert.equal(result.promptTokens, 3);
});

test("generate failures throw ConnectError", async () => {
  await assert.rejects(fakeClient().complete({}), (e: unknown) => e instanceof ConnectError && e.code === Code.InvalidArgument);
});

test("abort reports whether a generation was cancelled", async () => {
  const client = fakeClient();
  assert.equal(await client.abort("running"), true);
  assert.equal(await client.abort("unknown"), false);
});

test("session multiplexes generations and cancels one by id", async () => {
  const session = fakeClient().session();
  const keep = session.start({ requestId: "keep", input: textPrompt("a"), stopping: { maxTokens: 6 } });
  const drop = session.start({ requestId: "drop", input: textPrompt("b"), stopping: { maxTokens: 8 } });
  assert.deepEqual(session.pending.sort(), ["drop", "keep"]);
  for await (const event of drop) {
    assert.equal(event.requestId, "drop");
    if (event.case === "delta") {
      drop.cancel();
      break;
    }
  }
  const [k, d] = await Promise.all([keep.result(), drop.result()]);
  assert.equal(k.reasonName, "FINISH_REASON_LENGTH");
  assert.equal(k.completionTokens, 6);
  assert.equal(k.text, "one two three four five six");
  assert.equal(d.reasonName, "FINISH_REASON_CANCELLED");
  assert.ok(d.completionTokens >= 1 && d.completionTokens < 8);
  session.close();
  await session.closed;
  assert.deepEqual(session.pending, []);
});

test("session error events fail only their generation", async () => {
  const session = fakeClient().session();
  const bad = session.start({ requestId: "bad" });
  const good = session.start({ requestId: "good", input: textPrompt("a"), stopping: { maxTokens: 1 } });
  await assert.rejects(
    bad.result(),
    (e: unknown) => e instanceof GenerationError && e.code === Code.InvalidArgument && e.requestId === "bad",
  );
  assert.equal((await good.result()).text, "one");
  session.close();
  await session.closed;
});

test("session refuses an id already in flight", () => {
  const session = fakeClient().session();
  session.start({ requestId: "x", input: textPrompt("a"), stopping: { maxTokens: 1 } });
  assert.throws(() => session.start({ requestId: "x", input: textPrompt("a") }), /already in flight/);
  session.abort();
});

test("events of a session generation can be iterated to the end", async () => {
  const session = fakeClient().session();
  const g = session.start({ requestId: "it", input: textPrompt("a"), stopping: { maxTokens: 2 } });
  session.close();
  const result = await collect(g);
  assert.equal(result.text, "one two");
  await session.closed;
});

test("finishReasonName gives the proto names", () => {
  assert.equal(finishReasonName(FinishReason.END_OF_SEQUENCE), "FINISH_REASON_END_OF_SEQUENCE");
  assert.equal(finishReasonName(FinishReason.CANCELLED), "FINISH_REASON_CANCELLED");
  assert.equal(finishReasonName(FinishReason.STRUCTURED_OUTPUT_COMPLETE), "FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE");
  assert.equal(finishReasonName(99 as FinishReason), "FINISH_REASON_99");
});

// --- structured output, logit bias, n ------------------------------------------------------------

const SCHEMA = { type: "object", properties: { name: { type: "string" } }, required: ["name"] };

test("structured output helpers set each kind of format", () => {
  assert.deepEqual(jsonSchemaOutput(SCHEMA), { format: { case: "jsonSchema", value: JSON.stringify(SCHEMA) } });
  assert.deepEqual(jsonSchemaOutput('{"type": "string"}'), { format: { case: "jsonSchema", value: '{"type": "string"}' } });
  assert.deepEqual(jsonObjectOutput(), { format: { case: "jsonObject", value: {} } });
  assert.deepEqual(regexOutput("[0-9]{3}"), { format: { case: "regex", value: "[0-9]{3}" } });
  assert.deepEqual(larkGrammarOutput('start: "yes" | "no"'), {
    format: { case: "grammar", value: { syntax: Grammar_Syntax.LARK, text: 'start: "yes" | "no"' } },
  });
  assert.deepEqual(gbnfGrammarOutput('root ::= "yes" | "no"'), {
    format: { case: "grammar", value: { syntax: Grammar_Syntax.GBNF, text: 'root ::= "yes" | "no"' } },
  });
  const options = ["red", "green"];
  const choice = choiceOutput(options);
  options.push("blue");
  assert.deepEqual(choice, { format: { case: "choice", value: { options: ["red", "green"] } } });
});

test("jsonSchemaOutput refuses what is not a JSON object", () => {
  assert.throws(() => jsonSchemaOutput([] as never), TypeError);
  assert.throws(() => jsonSchemaOutput(null as never), TypeError);
  assert.throws(() => jsonSchemaOutput(true as never), TypeError);
  assert.throws(() => regexOutput(/a+/ as never), /not a RegExp/);
});

test("logitBias takes a Map, an object or pairs and checks ids and biases", () => {
  assert.deepEqual(logitBias(new Map([[5, -100], [7, 2.5]])), { 5: -100, 7: 2.5 });
  assert.deepEqual(logitBias({ 5: -100, 7: 2.5 }), { 5: -100, 7: 2.5 });
  assert.deepEqual(logitBias([[0, 1]]), { 0: 1 });
  assert.deepEqual(logitBias(new Map()), {});
  assert.throws(() => logitBias(new Map([[-1, 1]])), /token id -1/);
  assert.throws(() => logitBias(new Map([[1.5, 1]])), /token id 1.5/);
  assert.throws(() => logitBias(new Map([[2 ** 32, 1]])), RangeError);
  assert.throws(() => logitBias({ x: 1 } as never), /token id "x"/);
  assert.throws(() => logitBias(new Map([[3, Number.NaN]])), /bias of token 3/);
});

test("the new options reach the server as the proto fields", async () => {
  const client = fakeClient();
  const cases = [
    [jsonSchemaOutput(SCHEMA), "jsonSchema"],
    [jsonObjectOutput(), "jsonObject"],
    [regexOutput("a+"), "regex"],
    [larkGrammarOutput("start: /a+/"), "grammar"],
    [gbnfGrammarOutput('root ::= "a"+'), "grammar"],
    [choiceOutput(["a", "b"]), "choice"],
  ] as const;
  for (const [structuredOutput, kind] of cases) {
    await client.completeSamples({
      input: textPrompt("hi"),
      n: 2,
      sampling: { temperature: 0.7, logitBias: logitBias(new Map([[11, -100], [12, 50]])) },
      stopping: { maxTokens: 1 },
      structuredOutput,
    });
    const got = received.at(-1);
    assert.ok(got !== undefined);
    assert.equal(got.n, 2);
    assert.deepEqual(got.sampling?.logitBias, { 11: -100, 12: 50 });
    assert.equal(got.structuredOutput?.format.case, kind);
  }
  const schema = received.at(-6)?.structuredOutput?.format;
  assert.deepEqual(schema?.case === "jsonSchema" ? JSON.parse(schema.value) : undefined, SCHEMA);
  const gbnf = received.at(-2)?.structuredOutput?.format;
  assert.equal(gbnf?.case === "grammar" ? gbnf.value.syntax : undefined, Grammar_Syntax.GBNF);
  const choice = received.at(-1)?.structuredOutput?.format;
  assert.deepEqual(choice?.case === "choice" ? choice.value.options : undefined, ["a", "b"]);
  await client.complete({ input: textPrompt("hi"), stopping: { maxTokens: 1 } });
  assert.equal(received.at(-1)?.n, undefined, "n stays unset unless asked for");
});

test("sampleCount reads n (absent or 0 means 1)", () => {
  assert.equal(sampleCount({}), 1);
  assert.equal(sampleCount({ n: 0 }), 1);
  assert.equal(sampleCount({ n: 4 }), 4);
});

test("generate with n > 1 streams to the last sample's finished event", async () => {
  const finished: number[] = [];
  const deltas = new Set<number>();
  let started = 0;
  for await (const event of fakeClient().generate({ input: textPrompt("hi"), n: 3, stopping: { maxTokens: 4 } })) {
    if (event.case === "started") started += 1;
    if (event.case === "delta") deltas.add(event.value.sampleIndex);
    if (event.case === "finished") finished.push(event.value.sampleIndex);
  }
  assert.equal(started, 1);
  assert.deepEqual([...deltas].sort(), [0, 1, 2]);
  assert.deepEqual(finished, [2, 1, 0], "the last sample finishes first, and the stream goes on");
});

test("completeSamples gives one result per sample, by index", async () => {
  const results = await fakeClient().completeSamples({
    requestId: "s",
    input: textPrompt("hi"),
    n: 3,
    stopping: { maxTokens: 4 },
  });
  assert.deepEqual(
    results.map((r) => [r.sampleIndex, r.text, r.completionTokens, r.reasonName]),
    [
      [0, "one two three four", 4, "FINISH_REASON_LENGTH"],
      [1, " two three four", 3, "FINISH_REASON_LENGTH"],
      [2, " three four", 2, "FINISH_REASON_LENGTH"],
    ],
  );
  assert.deepEqual(results[1]?.tokenIds, [100, 101, 102]);
  assert.ok(results.every((r) => r.requestId === "s" && r.promptTokens === 3));
  // The prompt is counted in the first finished event to arrive (sample 2's) only.
  assert.deepEqual(
    results.map((r) => r.finished.usage?.promptTokens),
    [0, 0, 3],
  );
  const single = await fakeClient().completeSamples({ input: textPrompt("hi"), stopping: { maxTokens: 2 } });
  assert.deepEqual(
    single.map((r) => [r.sampleIndex, r.text]),
    [[0, "one two"]],
  );
});

test("complete and collect refuse several samples with a clear error", async () => {
  const client = fakeClient();
  const before = received.length;
  await assert.rejects(client.complete({ input: textPrompt("hi"), n: 2 }), /n=2 samples: use completeSamples/);
  assert.equal(received.length, before, "the refused request is not sent");
  await assert.rejects(
    collect(client.generate({ input: textPrompt("hi"), n: 2, stopping: { maxTokens: 2 } })),
    /collect\(\) reads a generation of one sample.*collectSamples/,
  );
  await assert.rejects(collectSamples(client.generate({ input: textPrompt("hi") }), 0), RangeError);
});

test("collectSamples wants a finished event for every sample", async () => {
  const client = fakeClient();
  await assert.rejects(
    client.completeSamples({ requestId: "lose-last-sample", input: textPrompt("hi"), n: 3, stopping: { maxTokens: 3 } }),
    (e: unknown) =>
      e instanceof ConnectError && e.code === Code.Internal && /without a finished event for sample\(s\) 2 of 3/.test(e.message),
  );
  await assert.rejects(
    client.complete({ requestId: "lose-last-sample", input: textPrompt("hi"), stopping: { maxTokens: 1 } }),
    /ended without a finished event$/,
  );
  // Reading a 3-sample stream as 2 samples: the third one's events are refused.
  await assert.rejects(
    collectSamples(client.generate({ input: textPrompt("hi"), n: 3, stopping: { maxTokens: 3 } }), 2),
    /sample 2 of a request for 2 sample\(s\)/,
  );
});

test("a session generation with n > 1 runs to its last sample", async () => {
  const session = fakeClient().session();
  const many = session.start({ requestId: "many", input: textPrompt("a"), n: 3, stopping: { maxTokens: 3 } });
  const one = session.start({ requestId: "one", input: textPrompt("b"), stopping: { maxTokens: 5 } });
  assert.equal(many.samples, 3);
  const finished: number[] = [];
  for await (const event of many) {
    assert.equal(event.requestId, "many");
    if (event.case === "finished") finished.push(event.value.sampleIndex);
  }
  assert.deepEqual(finished, [2, 1, 0]);
  const results = await many.results();
  assert.deepEqual(
    results.map((r) => [r.sampleIndex, r.text]),
    [
      [0, "one two three"],
      [1, " two three"],
      [2, " three"],
    ],
  );
  await assert.rejects(many.result(), /n=3 samples: use results\(\)/);
  assert.equal((await one.result()).text, "one two three four five");
  assert.deepEqual((await one.results()).length, 1);
  session.close();
  await session.closed;
  assert.deepEqual(session.pending, []);
});

test("a session generation with n > 1 is pending until every sample finished", async () => {
  const session = fakeClient().session();
  const many = session.start({ requestId: "many", input: textPrompt("a"), n: 2, stopping: { maxTokens: 4 } });
  let sawFirstFinished = false;
  for await (const event of many) {
    if (event.case === "finished" && !sawFirstFinished) {
      sawFirstFinished = true;
      assert.deepEqual(session.pending, ["many"]);
    }
  }
  assert.ok(sawFirstFinished);
  assert.deepEqual(session.pending, []);
  session.close();
  await session.closed;
});

test("a session generation fails on an event for a sample it did not ask for", async () => {
  const session = fakeClient().session();
  const bad = session.start({ requestId: "bad-index", input: textPrompt("a"), n: 2, stopping: { maxTokens: 2 } });
  await assert.rejects(
    bad.results(),
    (e: unknown) => e instanceof ConnectError && e.code === Code.Internal && /sample 2 of a request for 2/.test(e.message),
  );
  assert.deepEqual(session.pending, []);
  session.close();
  await session.closed;
});

test("cancelling a session generation with n > 1 ends every sample", async () => {
  const session = fakeClient().session();
  const many = session.start({ requestId: "c", input: textPrompt("a"), n: 3, stopping: { maxTokens: 8 } });
  for await (const event of many) {
    if (event.case === "delta") {
      many.cancel();
      break;
    }
  }
  const results = await many.results();
  assert.deepEqual(
    results.map((r) => r.reasonName),
    ["FINISH_REASON_CANCELLED", "FINISH_REASON_CANCELLED", "FINISH_REASON_CANCELLED"],
  );
  session.close();
  await session.closed;
});

test("AsyncQueue delivers pushed items, then ends or fails", async () => {
  const q = new AsyncQueue<number>();
  q.push(1);
  setTimeout(() => {
    q.push(2);
    q.end();
  }, 1);
  const got: number[] = [];
  for await (const n of q) {
    got.push(n);
  }
  assert.deepEqual(got, [1, 2]);
  const f = new AsyncQueue<number>();
  f.fail(new Error("boom"));
  await assert.rejects(
    (async () => {
      for await (const _ of f) {
        // unreachable
      }
    })(),
    /boom/,
  );
});
