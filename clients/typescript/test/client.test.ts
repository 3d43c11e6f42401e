// Unit tests of the wrapper against an in-memory fake GenerationService
// (no server needed): node --test dist/test/
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";

import { create, isFieldSet, toBinary } from "@bufbuild/protobuf";
import type { DescMessage } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import type { ConnectRouter } from "@connectrpc/connect";

import {
  BadRequestSchema,
  ErrorInfoSchema,
  FinishReason,
  GenerationError,
  GenerateRequestSchema,
  GenerationService,
  Grammar_Syntax,
  ModelService,
  RetryInfoSchema,
  SpeculativeOptions_SpeculativeMethod,
  TokenwireClient,
  TokenwireError,
  chatPrompt,
  choiceOutput,
  collect,
  collectSamples,
  finishReasonName,
  gbnfGrammarOutput,
  generateRequest,
  jsonObjectOutput,
  jsonSchemaOutput,
  larkGrammarOutput,
  logitBias,
  regexOutput,
  sampleCount,
  textPrompt,
} from "../src/index.js";
import type { GenerateRequest, GenerateResponseSchema, SessionRequest, SessionResponseSchema } from "../src/index.js";
import { AsyncQueue } from "../src/queue.js";
import { DEFAULT_RETRY_POLICY, backoffMs, resolveRetryPolicy } from "../src/retry.js";

type SessionResponseInit = MessageInitShape<typeof SessionResponseSchema>;
const WORDS = ["one", " two", " three", " four", " five", " six", " seven", " eight"];

/** Requests the fake service received, last one last. */
const received: GenerateRequest[] = [];
/** Request ids the fake service's Abort RPC was called with (it cancels session generations too). */
const aborted = new Set<string>();

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
  if (requestId === "rich-error") {
    yield { requestId, event: { case: "error", value: RICH_STATUS } };
    return;
  }
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

/** A RESOURCE_EXHAUSTED status with all three kinds of detail the server sends. */
const RICH_DETAILS = [
  create(BadRequestSchema, {
    fieldViolations: [
      { field: "sampling.top_p", description: "must be in (0, 1]" },
      { field: "n", description: "at most 16" },
    ],
  }),
  create(RetryInfoSchema, { retryDelay: { seconds: 1n, nanos: 500_000_000 } }),
  create(ErrorInfoSchema, { reason: "ENGINE_QUEUE_FULL", domain: "tokenwire", metadata: { queued: "64" } }),
];
const RICH_STATUS = {
  code: Code.ResourceExhausted,
  message: "queue full",
  details: [
    anyPack(BadRequestSchema, RICH_DETAILS[0] as never),
    anyPack(RetryInfoSchema, RICH_DETAILS[1] as never),
    anyPack(ErrorInfoSchema, RICH_DETAILS[2] as never),
  ],
};

/**
 * Request ids whose Generate (or Abort) calls fail their first `failures`
 * attempts with `code` (after the started event when `afterStart`), with a
 * RetryInfo of `retryDelayS` when given; `attempts` counts the calls.
 */
interface Flaky {
  failures: number;
  code: Code;
  afterStart?: boolean;
  retryDelayS?: number;
}
const flaky = new Map<string, Flaky>();
const attempts = new Map<string, number>();
/** The signal of each Generate call's handler, by request id (aborted when the client cancels). */
const generateSignals = new Map<string, AbortSignal>();

function flakyFailure(requestId: string): ConnectError | undefined {
  const plan = flaky.get(requestId);
  if (plan === undefined) {
    return undefined;
  }
  const attempt = (attempts.get(requestId) ?? 0) + 1;
  attempts.set(requestId, attempt);
  if (attempt > plan.failures) {
    return undefined;
  }
  const details =
    plan.retryDelayS === undefined
      ? undefined
      : [
          {
            desc: RetryInfoSchema,
            value: {
              retryDelay: {
                seconds: BigInt(Math.floor(plan.retryDelayS)),
                nanos: Math.round((plan.retryDelayS % 1) * 1e9),
              },
            },
          },
        ];
  return new ConnectError(`attempt ${attempt} refused`, plan.code, undefined, details);
}

/** The fake Generate: the flaky plans, then fakeEvents. */
async function* fakeGenerate(
  request: GenerateRequest,
  signal: AbortSignal,
): AsyncGenerator<MessageInitShape<typeof GenerateResponseSchema>> {
  const plan = flaky.get(request.requestId);
  const failure = flakyFailure(request.requestId);
  if (failure !== undefined) {
    if (plan?.afterStart === true) {
      yield { requestId: request.requestId, event: { case: "started", value: { promptTokens: 3 } } };
    }
    throw failure;
  }
  for await (const response of fakeEvents(request, () => signal.aborted)) {
    if (response.event?.case !== "error") {
      yield response as never;
    } else if (request.requestId === "rich-error") {
      throw new ConnectError("queue full", Code.ResourceExhausted, undefined, [
        { desc: BadRequestSchema, value: RICH_DETAILS[0] as never },
        { desc: RetryInfoSchema, value: RICH_DETAILS[1] as never },
        { desc: ErrorInfoSchema, value: RICH_DETAILS[2] as never },
      ]);
    } else {
      throw new ConnectError(response.event.value.message ?? "", Code.InvalidArgument);
    }
  }
}

function fakeClient(options: ConstructorParameters<typeof TokenwireClient>[1] = {}): TokenwireClient {
  const transport = createRouterTransport((router) => {
    routeModelService(router);
    router.service(GenerationService, {
      async *generate(request, context) {
        generateSignals.set(request.requestId, context.signal);
        yield* fakeGenerate(request, context.signal);
      },
      async *session(requests: AsyncIterable<SessionRequest>) {
        const out = new AsyncQueue<SessionResponseInit>();
        const cancelled = new Set<string>();
        const running: Promise<void>[] = [];
        const reader = (async () => {
          for await (const request of requests) {
            if (request.action.case === "start") {
              const start = request.action.value;
              const plan = flaky.get(start.requestId);
              const failure = flakyFailure(start.requestId);
              if (failure !== undefined) {
                const rid = start.requestId;
                if (plan?.afterStart === true) {
                  out.push({ requestId: rid, event: { case: "started", value: { promptTokens: 3 } } });
                }
                const details = failure.details.flatMap((d) =>
                  "desc" in d ? [anyPack(RetryInfoSchema, create(RetryInfoSchema, d.value as never))] : [],
                );
                out.push({ requestId: rid, event: { case: "error", value: { code: failure.code, message: failure.rawMessage, details } } });
                continue;
              }
              running.push(
                (async () => {
                  for await (const response of fakeEvents(start, () => cancelled.has(start.requestId) || aborted.has(start.requestId))) {
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
      // (ModelService below)
      abort(request) {
        const failure = flakyFailure(request.requestId);
        if (failure !== undefined) {
          throw failure;
        }
        aborted.add(request.requestId);
        return { cancelled: request.requestId === "running" };
      },
    });
  });
  return new TokenwireClient("unused:0", { transport, ...options });
}

/** The fake ModelService's WatchLoad calls' signals, last one last. */
const watchSignals: AbortSignal[] = [];

function routeModelService(router: ConnectRouter): void {
  router.service(ModelService, {
    getModelInfo() {
      return { model: "fake", engine: "sim", maxSamples: 16 };
    },
    getLoad() {
      const failure = flakyFailure("get-load");
      if (failure !== undefined) {
        throw failure;
      }
      return { activeRequests: 2, slots: 8 };
    },
    async *watchLoad(request, context) {
      watchSignals.push(context.signal);
      const ms = request.interval === undefined ? 5 : Number(request.interval.seconds) * 1000 + request.interval.nanos / 1e6;
      for (let i = 0; ; i++) {
        yield { load: { activeRequests: i } };
        await sleep(ms);
      }
    },
    tokenize(request) {
      if (request.input.case === "text") {
        return { tokenIds: [...request.input.value].map((c) => c.charCodeAt(0)) };
      }
      const messages = request.input.value?.messages ?? [];
      return { tokenIds: [1], renderedPrompt: messages.map((m) => `<${m.role}>${m.content}`).join("") };
    },
    detokenize(request) {
      const text = request.tokenIds.map((id) => String.fromCharCode(id)).join("");
      return { text: request.keepSpecialTokens ? `<s>${text}` : text };
    },
  });
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

test("cancel after close falls back to the Abort RPC", async () => {
  const session = fakeClient().session();
  const g = session.start({ requestId: "cancel-after-close", input: textPrompt("a"), stopping: { maxTokens: 1000 } });
  session.close();
  for await (const event of g) {
    if (event.case === "delta") {
      g.cancel();
      break;
    }
  }
  const result = await g.result();
  assert.equal(result.reasonName, "FINISH_REASON_CANCELLED");
  assert.ok(aborted.has("cancel-after-close"));
  await session.closed;
});

test("iterating a generation that ends without its finished event throws", async () => {
  const client = fakeClient();
  const read = async (events: AsyncIterable<unknown>): Promise<number> => {
    let count = 0;
    for await (const _ of events) count += 1;
    return count;
  };
  const isProtocolError = (e: unknown): boolean =>
    e instanceof ConnectError && e.code === Code.Internal && /without a finished event/.test(e.message);
  await assert.rejects(
    read(client.generate({ requestId: "lose-last-sample", input: textPrompt("hi"), stopping: { maxTokens: 2 } })),
    isProtocolError,
  );
  await assert.rejects(
    read(client.generate({ requestId: "lose-last-sample", input: textPrompt("hi"), n: 3, stopping: { maxTokens: 3 } })),
    isProtocolError,
  );
  // A stream that finished every sample reads to the end.
  assert.equal(await read(client.generate({ input: textPrompt("hi"), n: 2, stopping: { maxTokens: 2 } })), 1 + 3 + 2);
});

function checkRichError(e: unknown): boolean {
  assert.ok(e instanceof TokenwireError, "a TokenwireError");
  assert.ok(e instanceof ConnectError, "still a ConnectError");
  assert.equal(e.code, Code.ResourceExhausted);
  assert.equal(e.requestId, "rich-error");
  assert.deepEqual(e.fieldViolations, [
    { field: "sampling.top_p", description: "must be in (0, 1]" },
    { field: "n", description: "at most 16" },
  ]);
  assert.equal(e.retryDelaySeconds, 1.5);
  assert.deepEqual(e.errorInfo, { reason: "ENGINE_QUEUE_FULL", domain: "tokenwire", metadata: { queued: "64" } });
  assert.equal(e.findDetails(ErrorInfoSchema)[0]?.reason, "ENGINE_QUEUE_FULL");
  return true;
}

test("Generate errors carry their details as typed accessors", async () => {
  const client = fakeClient();
  await assert.rejects(client.complete({ requestId: "rich-error", input: textPrompt("hi") }), checkRichError);
  await assert.rejects(
    client.complete({}),
    (e: unknown) =>
      e instanceof TokenwireError &&
      e.code === Code.InvalidArgument &&
      e.fieldViolations.length === 0 &&
      e.retryDelaySeconds === undefined &&
      e.errorInfo === undefined,
  );
});

test("Session generation errors carry their details as typed accessors", async () => {
  const session = fakeClient().session();
  const g = session.start({ requestId: "rich-error", input: textPrompt("a") });
  await assert.rejects(g.result(), (e: unknown) => e instanceof GenerationError && checkRichError(e));
  session.close();
  await session.closed;
});

test("TokenwireError.of converts a raw ConnectError, keeping its details", () => {
  const raw = new ConnectError("bad", Code.InvalidArgument, { "x-a": "1" });
  raw.details.push({ type: "google.rpc.BadRequest", value: toBinary(BadRequestSchema, RICH_DETAILS[0] as never) });
  const e = TokenwireError.of(raw, "r");
  assert.equal(e.rawMessage, "bad");
  assert.equal(e.requestId, "r");
  assert.equal(e.metadata.get("x-a"), "1");
  assert.equal(e.fieldViolations[1]?.field, "n");
  assert.equal(TokenwireError.of(e), e);
  assert.equal(TokenwireError.of(new Error("plain")).code, Code.Unknown);
});

// --- retries -------------------------------------------------------------------------------------

const FAST = { initialBackoffMs: 1, maxBackoffMs: 2 };

function flakyRequest(requestId: string, plan: Flaky): { requestId: string; input: ReturnType<typeof textPrompt>; stopping: { maxTokens: number } } {
  flaky.set(requestId, plan);
  attempts.delete(requestId);
  return { requestId, input: textPrompt("hi"), stopping: { maxTokens: 2 } };
}

test("Generate is retried on UNAVAILABLE and RESOURCE_EXHAUSTED before the first event", async () => {
  const client = fakeClient({ retry: FAST });
  const a = await client.complete(flakyRequest("retry-unavailable", { failures: 2, code: Code.Unavailable }));
  assert.equal(a.text, "one two");
  assert.equal(attempts.get("retry-unavailable"), 3);
  await client.complete(flakyRequest("retry-exhausted", { failures: 3, code: Code.ResourceExhausted }));
  assert.equal(attempts.get("retry-exhausted"), 4);
});

test("a Generate stream counts the calls made for it in attempts", async () => {
  const client = fakeClient({ retry: FAST });
  const retried = client.generate(flakyRequest("attempts-retried", { failures: 2, code: Code.ResourceExhausted }));
  assert.equal(retried.attempts, 0, "nothing is sent before iteration");
  let sawStarted = false;
  for await (const event of retried) {
    if (event.case === "started") {
      sawStarted = true;
      assert.equal(retried.attempts, 3);
    }
  }
  assert.ok(sawStarted);
  assert.equal(retried.attempts, 3);
  assert.equal(attempts.get("attempts-retried"), 3);
  const once = client.generate({ requestId: "attempts-once", input: textPrompt("hi"), stopping: { maxTokens: 2 } });
  for await (const _ of once) {
    // drain
  }
  assert.equal(once.attempts, 1);
  const refused = client.generate(flakyRequest("attempts-refused", { failures: 10, code: Code.Unavailable }), {
    retry: { maxAttempts: 2 },
  });
  await assert.rejects(async () => {
    for await (const _ of refused) {
      // drain
    }
  }, /attempt 2 refused/);
  assert.equal(refused.attempts, 2);
  assert.equal(attempts.get("attempts-refused"), 2);
});

test("Generate is not retried after an event, on other codes, or past maxAttempts", async () => {
  const client = fakeClient({ retry: FAST });
  await assert.rejects(
    client.complete(flakyRequest("retry-after-start", { failures: 1, code: Code.Unavailable, afterStart: true })),
    (e: unknown) => e instanceof TokenwireError && e.code === Code.Unavailable,
  );
  assert.equal(attempts.get("retry-after-start"), 1);
  await assert.rejects(
    client.complete(flakyRequest("retry-invalid", { failures: 1, code: Code.InvalidArgument })),
    (e: unknown) => e instanceof TokenwireError && e.code === Code.InvalidArgument,
  );
  assert.equal(attempts.get("retry-invalid"), 1);
  await assert.rejects(
    client.complete(flakyRequest("retry-many", { failures: 10, code: Code.Unavailable }), { retry: { maxAttempts: 3 } }),
    /attempt 3 refused/,
  );
  assert.equal(attempts.get("retry-many"), 3);
});

test("RetryInfo is honoured, and a delay above the cap is not waited for", async () => {
  const client = fakeClient({ retry: { initialBackoffMs: 10_000, maxBackoffMs: 10_000 } });
  let t0 = performance.now();
  await client.complete(flakyRequest("retry-info", { failures: 1, code: Code.ResourceExhausted, retryDelayS: 0.05 }));
  const waited = performance.now() - t0;
  assert.ok(waited >= 45 && waited < 2000, `waited ${waited} ms`);
  assert.equal(attempts.get("retry-info"), 2);
  t0 = performance.now();
  await assert.rejects(
    client.complete(flakyRequest("retry-info-long", { failures: 1, code: Code.ResourceExhausted, retryDelayS: 60 })),
    (e: unknown) => e instanceof TokenwireError && e.retryDelaySeconds === 60,
  );
  assert.ok(performance.now() - t0 < 2000);
  assert.equal(attempts.get("retry-info-long"), 1);
  await assert.rejects(
    client.complete(flakyRequest("retry-info-cap", { failures: 1, code: Code.Unavailable, retryDelayS: 0.05 }), {
      retry: { maxRetryInfoDelayMs: 10 },
    }),
    /attempt 1 refused/,
  );
});

test("a retry never waits past the deadline", async () => {
  const client = fakeClient();
  const t0 = performance.now();
  await assert.rejects(
    client.complete(flakyRequest("retry-deadline", { failures: 5, code: Code.Unavailable, retryDelayS: 0.5 }), {
      timeoutMs: 200,
    }),
    (e: unknown) => e instanceof TokenwireError && e.code === Code.Unavailable,
  );
  assert.ok(performance.now() - t0 < 400, "gave up without waiting");
  assert.equal(attempts.get("retry-deadline"), 1);
});

test("retries are configurable per client and per call, and the wait can be cancelled", async () => {
  const off = fakeClient({ retry: false });
  assert.equal(off.retryPolicy.maxAttempts, 1);
  await assert.rejects(off.complete(flakyRequest("retry-off", { failures: 1, code: Code.Unavailable })));
  assert.equal(attempts.get("retry-off"), 1);
  await off.complete(flakyRequest("retry-per-call", { failures: 1, code: Code.Unavailable }), {
    retry: { maxAttempts: 2, ...FAST },
  });
  assert.equal(attempts.get("retry-per-call"), 2);
  const on = fakeClient({ retry: FAST });
  await assert.rejects(on.complete(flakyRequest("retry-call-off", { failures: 1, code: Code.Unavailable }), { retry: false }));
  assert.equal(attempts.get("retry-call-off"), 1);
  assert.throws(() => fakeClient({ retry: { maxAttempts: 0 } }), RangeError);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 20);
  const t0 = performance.now();
  await assert.rejects(
    fakeClient().complete(flakyRequest("retry-cancelled", { failures: 1, code: Code.Unavailable, retryDelayS: 10 }), {
      signal: controller.signal,
    }),
    (e: unknown) => e instanceof TokenwireError && e.code === Code.Canceled,
  );
  assert.ok(performance.now() - t0 < 1000);
});

test("unary calls are retried too", async () => {
  const client = fakeClient({ retry: FAST });
  flakyRequest("abort-flaky", { failures: 2, code: Code.Unavailable });
  assert.equal(await client.abort("abort-flaky"), false);
  assert.equal(attempts.get("abort-flaky"), 3);
});

test("a session generation refused before it started is retried", async () => {
  const session = fakeClient({ retry: FAST }).session();
  const req = flakyRequest("session-retry", { failures: 2, code: Code.Unavailable });
  const g = session.start(req);
  assert.equal((await g.result()).text, "one two");
  assert.equal(attempts.get("session-retry"), 3);
  const late = session.start(flakyRequest("session-late", { failures: 1, code: Code.Unavailable, afterStart: true }));
  await assert.rejects(late.result(), (e: unknown) => e instanceof GenerationError && e.code === Code.Unavailable);
  assert.equal(attempts.get("session-late"), 1, "not retried after its started event");
  const waiting = session.start(flakyRequest("session-wait", { failures: 1, code: Code.Unavailable, retryDelayS: 10 }));
  await sleep(20);
  assert.deepEqual(session.pending, ["session-wait"]);
  waiting.cancel();
  await assert.rejects(waiting.result(), /attempt 1 refused/);
  session.close();
  await session.closed;
});

test("a session without retries fails a refused generation at once", async () => {
  const session = fakeClient().session({ retry: false });
  const g = session.start(flakyRequest("session-no-retry", { failures: 1, code: Code.ResourceExhausted }));
  await assert.rejects(g.result(), (e: unknown) => e instanceof GenerationError && e.code === Code.ResourceExhausted);
  assert.equal(attempts.get("session-no-retry"), 1);
  session.close();
  await session.closed;
});

// --- disposal and signals ---------------------------------------------------------------------------

test("await using a Generate stream cancels the call when the block is left", async () => {
  const client = fakeClient();
  {
    await using stream = client.generate({ requestId: "dispose-stream", input: textPrompt("hi"), stopping: { maxTokens: 1000 } });
    const first = await stream.next();
    assert.equal(first.value?.case, "started");
  }
  await sleep(10);
  assert.equal(generateSignals.get("dispose-stream")?.aborted, true, "the call was cancelled");
});

test("leaving a Generate loop early cancels the call", async () => {
  const client = fakeClient();
  for await (const event of client.generate({ requestId: "break-stream", input: textPrompt("hi"), stopping: { maxTokens: 1000 } })) {
    if (event.case === "delta") break;
  }
  await sleep(10);
  assert.equal(generateSignals.get("break-stream")?.aborted, true, "the call was cancelled");
});

test("await using a session generation cancels it; a session aborts what still runs", async () => {
  const session = fakeClient().session();
  let kept: ReturnType<typeof session.start> | undefined;
  {
    await using g = session.start({ requestId: "dispose-gen", input: textPrompt("a"), stopping: { maxTokens: 1000 } });
    kept = g;
  }
  assert.ok(kept.isDone);
  assert.equal((await kept.result()).reasonName, "FINISH_REASON_CANCELLED");
  let running: ReturnType<typeof session.start> | undefined;
  {
    await using s = fakeClient().session();
    running = s.start({ requestId: "dispose-session", input: textPrompt("a"), stopping: { maxTokens: 1000 } });
  }
  await assert.rejects(running.result(), (e: unknown) => e instanceof TokenwireError && e.code === Code.Canceled);
  {
    await using idle = fakeClient().session();
    assert.equal((await idle.start({ requestId: "idle", input: textPrompt("a"), stopping: { maxTokens: 1 } }).result()).text, "one");
  }
  session.close();
  await session.closed;
});

test("a per-generation signal on start cancels that generation only", async () => {
  const session = fakeClient().session();
  const controller = new AbortController();
  const g = session.start(
    { requestId: "signal-gen", input: textPrompt("a"), stopping: { maxTokens: 1000 } },
    { signal: controller.signal },
  );
  const other = session.start({ requestId: "signal-other", input: textPrompt("b"), stopping: { maxTokens: 3 } });
  for await (const event of g) {
    if (event.case === "delta") {
      controller.abort();
      break;
    }
  }
  assert.equal((await g.result()).reasonName, "FINISH_REASON_CANCELLED");
  assert.equal((await other.result()).reasonName, "FINISH_REASON_LENGTH");
  const before = received.length;
  const pre = session.start({ requestId: "signal-pre", input: textPrompt("a") }, { signal: AbortSignal.abort() });
  await assert.rejects(pre.result(), (e: unknown) => e instanceof TokenwireError && e.code === Code.Canceled);
  assert.deepEqual(session.pending, []);
  session.close();
  await session.closed;
  assert.equal(received.length, before, "an aborted start is not sent");
});

// --- full options and ModelService ------------------------------------------------------------------

const EVERY_OPTION = {
  requestId: "all",
  temperature: 0.5,
  topP: 0.9,
  topK: 40,
  minP: 0.05,
  seed: 7,
  repetitionPenalty: 1.1,
  presencePenalty: 0.2,
  frequencyPenalty: 0.3,
  logitBias: new Map([[5, -100]]),
  maxTokens: 9,
  minTokens: 1,
  stop: ["\n"],
  stopTokenIds: [2],
  ignoreEos: true,
  includeTokenIds: true,
  includeText: false,
  logprobs: true,
  topLogprobs: 3,
  speculation: "ngram",
  draftLength: 4,
  timeLimitMs: 1500,
  n: 2,
  structuredOutput: jsonObjectOutput(),
} as const;

/** The fields of `schema` (and of its tokenwire sub-messages) not set in `message`, as paths. */
function unsetFields(schema: DescMessage, message: never, prefix = ""): string[] {
  return schema.fields.flatMap((field) => {
    const path = prefix + field.name;
    if (field.oneof !== undefined && field.oneof.fields[0] !== field) {
      return []; // a oneof is set once, by any of its fields
    }
    const set =
      field.oneof !== undefined
        ? (message[field.oneof.localName] as { case?: string }).case !== undefined
        : isFieldSet(message, field);
    if (!set) {
      return [field.oneof !== undefined ? prefix + field.oneof.name : path];
    }
    if (field.fieldKind === "message" && field.message.typeName.startsWith("tokenwire.") && field.oneof === undefined) {
      return unsetFields(field.message, message[field.localName] as never, `${path}.`);
    }
    return [];
  });
}

test("generateRequest reaches every GenerateRequest field", () => {
  const request = create(GenerateRequestSchema, generateRequest("hi", EVERY_OPTION));
  assert.deepEqual(unsetFields(GenerateRequestSchema, request as never), []);
  assert.equal(request.input.case, "text");
  assert.equal(request.sampling?.seed, 7n);
  assert.deepEqual(request.sampling?.logitBias, { 5: -100 });
  assert.deepEqual(request.stopping?.stop, ["\n"]);
  assert.equal(request.output?.tokenIds, true);
  assert.equal(request.output?.text, false);
  assert.equal(request.speculative?.method, SpeculativeOptions_SpeculativeMethod.NGRAM);
  assert.equal(request.timeout?.seconds, 1n);
  assert.equal(request.timeout?.nanos, 500_000_000);
  assert.equal(request.structuredOutput?.format.case, "jsonObject");
  assert.deepEqual(generateRequest(chatPrompt([{ role: "user", content: "x" }])), {
    input: { case: "chat", value: { messages: [{ role: "user", content: "x" }] } },
  });
  assert.deepEqual(generateRequest("x", { maxTokens: 1 }), { input: { case: "text", value: "x" }, stopping: { maxTokens: 1 } });
  assert.throws(() => generateRequest("x", { speculation: "magic" as never }), /speculation is one of off, ngram, eagle3/);
});

test("generateRequest's request goes through Generate as is", async () => {
  await fakeClient().completeSamples(generateRequest("hi", { ...EVERY_OPTION, requestId: "full" }));
  const got = received.at(-1);
  assert.equal(got?.requestId, "full");
  assert.deepEqual(unsetFields(GenerateRequestSchema, got as never), []);
});

test("ModelService calls are wrapped", async () => {
  const client = fakeClient({ retry: FAST });
  assert.equal((await client.getModelInfo()).maxSamples, 16);
  flakyRequest("get-load", { failures: 1, code: Code.Unavailable });
  assert.equal((await client.getLoad()).slots, 8);
  assert.equal(attempts.get("get-load"), 2);
  assert.deepEqual((await client.tokenize("ab")).tokenIds, [97, 98]);
  assert.equal((await client.tokenize([{ role: "user", content: "hi" }])).renderedPrompt, "<user>hi");
  assert.equal(await client.detokenize([104, 105]), "hi");
  assert.equal(await client.detokenize([104], { keepSpecialTokens: true }), "<s>h");
});

test("watchLoad is an async iterable that cancels the call when left", async () => {
  const client = fakeClient();
  const seen: number[] = [];
  for await (const load of client.watchLoad(1)) {
    seen.push(load.activeRequests);
    if (seen.length === 3) break;
  }
  assert.deepEqual(seen, [0, 1, 2]);
  await sleep(10);
  assert.equal(watchSignals.at(-1)?.aborted, true);
  {
    await using loads = client.watchLoad();
    assert.equal((await loads.next()).value?.activeRequests, 0);
  }
  await sleep(10);
  assert.equal(watchSignals.at(-1)?.aborted, true);
});

test("backoff is exponential with equal jitter, capped", () => {
  const policy = (r: number) =>
    resolveRetryPolicy(DEFAULT_RETRY_POLICY, { initialBackoffMs: 100, multiplier: 2, maxBackoffMs: 300, random: () => r });
  assert.equal(backoffMs(policy(0), 1), 50);
  assert.equal(backoffMs(policy(0.5), 1), 75);
  assert.equal(backoffMs(policy(0), 2), 100);
  assert.equal(backoffMs(policy(0), 3), 150);
  assert.equal(backoffMs(policy(0), 5), 150);
  assert.ok(backoffMs(policy(0.999), 5) < 300);
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
