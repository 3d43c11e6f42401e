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
  TokenwireClient,
  collect,
  finishReasonName,
  textPrompt,
} from "../src/index.js";
import type { GenerateRequest, SessionRequest, SessionResponseSchema } from "../src/index.js";
import { AsyncQueue } from "../src/queue.js";

type SessionResponseInit = MessageInitShape<typeof SessionResponseSchema>;
const WORDS = ["one", " two", " three", " four", " five", " six", " seven", " eight"];

/** Events of a fake generation: one word per token, 2 ms apart, until max tokens or cancel. */
async function* fakeEvents(
  request: GenerateRequest,
  cancelled: () => boolean,
): AsyncGenerator<SessionResponseInit> {
  const requestId = request.requestId || "generated-id";
  if (request.input.case === undefined) {
    yield { requestId, event: { case: "error", value: { code: Code.InvalidArgument, message: "input is required" } } };
    return;
  }
  yield { requestId, event: { case: "started", value: { promptTokens: 3, model: "fake" } } };
  const max = request.stopping?.maxTokens ?? WORDS.length;
  let produced = 0;
  let reason = FinishReason.LENGTH;
  while (produced < max) {
    await sleep(2);
    if (cancelled()) {
      reason = FinishReason.CANCELLED;
      break;
    }
    yield { requestId, event: { case: "delta", value: { tokenIds: [produced], text: WORDS[produced % WORDS.length] ?? "" } } };
    produced += 1;
  }
  yield {
    requestId,
    event: {
      case: "finished",
      value: { reason, usage: { promptTokens: 3, completionTokens: produced } },
    },
  };
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
