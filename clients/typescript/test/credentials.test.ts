// TLS / token options: validation, the environment settings of the examples,
// and the bearer token on the wire (a real HTTP/2 server on 127.0.0.1).
// TLS against a real TLS server is tested live: tests/test_client_typescript.py.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http2";
import type { Http2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

import {
  FinishReason,
  GenerationService,
  MAX_TOKEN_BYTES,
  TokenwireClient,
  optionsFromEnvironment,
  statusCodeName,
  textPrompt,
} from "../src/index.js";
import type { SessionRequest } from "../src/index.js";

/** The `authorization` header of every call the server saw, in order ("" when absent). */
const seen: { method: string; authorization: string }[] = [];
let server: Http2Server;
let target: string;

before(async () => {
  const handler = connectNodeAdapter({
    routes: (router) => {
      router.service(GenerationService, {
        async *generate(request, context) {
          seen.push({ method: "generate", authorization: context.requestHeader.get("authorization") ?? "" });
          yield { requestId: request.requestId, event: { case: "started", value: { promptTokens: 1 } } };
          yield { requestId: request.requestId, event: { case: "finished", value: { reason: FinishReason.LENGTH } } };
        },
        async *session(requests: AsyncIterable<SessionRequest>, context) {
          seen.push({ method: "session", authorization: context.requestHeader.get("authorization") ?? "" });
          for await (const request of requests) {
            if (request.action.case === "start") {
              const requestId = request.action.value.requestId;
              yield { requestId, event: { case: "finished", value: { reason: FinishReason.LENGTH } } };
            }
          }
        },
        abort(request, context) {
          seen.push({ method: "abort", authorization: context.requestHeader.get("authorization") ?? "" });
          return { cancelled: request.requestId === "running" };
        },
      });
    },
  });
  server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Runs one unary, one server-streaming and one bidi call; the headers the server saw. */
async function callsSeen(client: TokenwireClient): Promise<{ method: string; authorization: string }[]> {
  seen.length = 0;
  try {
    assert.equal(await client.abort("running"), true);
    const result = await client.complete({ requestId: "g", input: textPrompt("hi") });
    assert.equal(result.reasonName, "FINISH_REASON_LENGTH");
    const session = client.session();
    const generation = session.start({ requestId: "s", input: textPrompt("hi") });
    session.close();
    assert.equal((await generation.result()).requestId, "s");
    await session.closed;
  } finally {
    client.close();
  }
  return [...seen];
}

test("the token goes with every call, unary and streaming, on a plaintext connection", async () => {
  const calls = await callsSeen(new TokenwireClient(target, { token: "tw-abc.DEF_123" }));
  assert.deepEqual(calls, [
    { method: "abort", authorization: "Bearer tw-abc.DEF_123" },
    { method: "generate", authorization: "Bearer tw-abc.DEF_123" },
    { method: "session", authorization: "Bearer tw-abc.DEF_123" },
  ]);
});

test("without a token no authorization header is sent", async () => {
  const calls = await callsSeen(new TokenwireClient(target));
  assert.deepEqual(
    calls.map((c) => c.authorization),
    ["", "", ""],
  );
});

test("a call's own authorization header wins over the client's token", async () => {
  const client = new TokenwireClient(target, { token: "client-token" });
  seen.length = 0;
  try {
    await client.abort("x", { headers: { authorization: "Bearer call-token" } });
    await client.abort("y");
  } finally {
    client.close();
  }
  assert.deepEqual(
    seen.map((c) => c.authorization),
    ["Bearer call-token", "Bearer client-token"],
  );
});

test("tls: true speaks TLS (a plaintext server cannot answer it)", async () => {
  const client = new TokenwireClient(target, { tls: true });
  try {
    await assert.rejects(client.abort("x", { timeoutMs: 10_000 }), (e: unknown) => e instanceof ConnectError);
  } finally {
    client.close();
  }
});

test("bad tokens are refused without echoing them", () => {
  const tooLong = "a".repeat(MAX_TOKEN_BYTES + 1);
  for (const token of ["", "has space", "line\r\nbreak", "tab\tin", "é-not-ascii", tooLong]) {
    assert.throws(
      () => new TokenwireClient(target, { token }),
      (e: unknown) => e instanceof Error && (token.length < 3 || !e.message.includes(token)),
      JSON.stringify(token.slice(0, 20)),
    );
  }
  new TokenwireClient(target, { token: "a".repeat(MAX_TOKEN_BYTES) }).close();
});

test("contradictory or incomplete TLS options are refused", () => {
  const dir = mkdtempSync(join(tmpdir(), "tokenwire-tls-"));
  try {
    const notPem = join(dir, "not.pem");
    writeFileSync(notPem, "not a certificate\n");
    const badPem = join(dir, "bad.pem");
    writeFileSync(badPem, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    const cases: [string, () => unknown, RegExp][] = [
      ["cert without key", () => new TokenwireClient(target, { tls: { certFile: notPem } }), /certFile and tls.keyFile/],
      ["key without cert", () => new TokenwireClient(target, { tls: { keyFile: notPem } }), /certFile and tls.keyFile/],
      ["TLS with an http URL", () => new TokenwireClient(`http://${target}`, { tls: true }), /https:\/\/ target/],
      ["tls false with an https URL", () => new TokenwireClient(`https://${target}`, { tls: false }), /contradicts/],
      ["missing CA file", () => new TokenwireClient(target, { tls: { caFile: join(dir, "absent.pem") } }), /tls\.caFile: cannot read/],
      ["CA file that is not PEM", () => new TokenwireClient(target, { tls: { caFile: notPem } }), /tls.caFile: no PEM/],
      ["CA file with a broken certificate", () => new TokenwireClient(target, { tls: { caFile: badPem } }), /tls.caFile: bad certificate/],
      [
        "client key that is not PEM",
        () => new TokenwireClient(target, { tls: { certFile: notPem, keyFile: notPem } }),
        /tls: bad certificate or key/,
      ],
      [
        "options a custom transport cannot use",
        () => new TokenwireClient(target, { transport: createRouterTransport(() => undefined), token: "t" }),
        /default transport/,
      ],
    ];
    for (const [name, make, message] of cases) {
      assert.throws(make, message, name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("optionsFromEnvironment reads the examples' variables", () => {
  assert.deepEqual(optionsFromEnvironment({}), { target: "127.0.0.1:50051", tls: undefined, token: undefined });
  assert.deepEqual(optionsFromEnvironment({ TOKENWIRE_TARGET: "h:1", TOKENWIRE_TLS_CA: "", TOKENWIRE_TOKEN: "" }), {
    target: "h:1",
    tls: undefined,
    token: undefined,
  });
  assert.deepEqual(optionsFromEnvironment({ TOKENWIRE_TLS_CA: "ca.pem", TOKENWIRE_TOKEN: "t" }), {
    target: "127.0.0.1:50051",
    tls: { caFile: "ca.pem", certFile: undefined, keyFile: undefined },
    token: "t",
  });
  assert.deepEqual(
    optionsFromEnvironment({ TOKENWIRE_TARGET: "localhost:9", TOKENWIRE_CLIENT_CERT: "c.pem", TOKENWIRE_CLIENT_KEY: "k.pem" }).tls,
    { caFile: undefined, certFile: "c.pem", keyFile: "k.pem" },
  );
});

test("statusCodeName gives gRPC's names", () => {
  assert.equal(statusCodeName(Code.Unauthenticated), "UNAUTHENTICATED");
  assert.equal(statusCodeName(Code.PermissionDenied), "PERMISSION_DENIED");
  assert.equal(statusCodeName(Code.Canceled), "CANCELLED");
  assert.equal(statusCodeName(Code.DeadlineExceeded), "DEADLINE_EXCEEDED");
});
