import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { CallOptions, Client, Interceptor, Transport } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import type { SecureClientSessionOptions } from "node:http2";

import type { Status } from "../gen/google/rpc/status_pb.js";
import {
  FinishReason,
  FinishReasonSchema,
  GenerationService,
  Grammar_Syntax,
  SpeculativeOptions_SpeculativeMethod,
} from "../gen/tokenwire/v1/generation_pb.js";
import type {
  ChatMessage,
  Delta,
  Finished,
  GenerateRequestSchema,
  GenerateResponse,
  SessionRequestSchema,
  SessionResponse,
  Started,
  StructuredOutputSchema,
} from "../gen/tokenwire/v1/generation_pb.js";
import { ModelService } from "../gen/tokenwire/v1/model_pb.js";
import type { GetLoadResponse, GetModelInfoResponse, TokenizeResponse } from "../gen/tokenwire/v1/model_pb.js";
import { bearerToken, tlsSessionOptions } from "./credentials.js";
import type { TlsOptions } from "./credentials.js";
import { TokenwireError, protocolError } from "./errors.js";
import { AsyncQueue } from "./queue.js";
import { DEFAULT_RETRY_POLICY, Deadline, backoff, resolveRetryPolicy, retryDelayMs } from "./retry.js";
import type { ResolvedRetryPolicy, RetryOption } from "./retry.js";

/** A generation request, as a plain object (every field optional, as in proto3). */
export type GenerateRequestInit = MessageInitShape<typeof GenerateRequestSchema>;

/** A generation request for a Session: `requestId` is required there. */
export type SessionStartInit = GenerateRequestInit & { requestId: string };

/** The `input` of a request: use {@link textPrompt}, {@link chatPrompt} or {@link tokenPrompt}. */
export type PromptInit = NonNullable<GenerateRequestInit["input"]>;

/** A plain text prompt. */
export function textPrompt(text: string): PromptInit {
  return { case: "text", value: text };
}

/** A conversation rendered with the model's chat template. */
export function chatPrompt(messages: ReadonlyArray<Pick<ChatMessage, "role" | "content">>): PromptInit {
  return { case: "chat", value: { messages: messages.map((m) => ({ role: m.role, content: m.content })) } };
}

/** A prompt given as token ids. */
export function tokenPrompt(ids: readonly number[]): PromptInit {
  return { case: "tokenIds", value: { ids: [...ids] } };
}

/**
 * A request's `structuredOutput`: use {@link jsonSchemaOutput},
 * {@link jsonObjectOutput}, {@link regexOutput}, {@link larkGrammarOutput},
 * {@link gbnfGrammarOutput} or {@link choiceOutput}.
 */
export type StructuredOutputInit = MessageInitShape<typeof StructuredOutputSchema>;

/** A JSON Schema, as its JSON text or as a plain object (serialized with JSON.stringify). */
export type JsonSchema = string | { readonly [keyword: string]: unknown };

/**
 * The output is one JSON value valid against `schema`: its JSON text, sent as
 * is, or a plain object, sent as `JSON.stringify(schema)`.
 */
export function jsonSchemaOutput(schema: JsonSchema): StructuredOutputInit {
  if (typeof schema === "string") {
    return { format: { case: "jsonSchema", value: schema } };
  }
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw new TypeError("a JSON Schema is a JSON object: pass its text or a plain object");
  }
  return { format: { case: "jsonSchema", value: JSON.stringify(schema) } };
}

/** The output is any JSON object (`{...}`). */
export function jsonObjectOutput(): StructuredOutputInit {
  return { format: { case: "jsonObject", value: {} } };
}

/**
 * The whole output matches `pattern` (Rust regex syntax, anchored at both
 * ends, no lookaround or backreferences: give its source text, not a RegExp).
 */
export function regexOutput(pattern: string): StructuredOutputInit {
  if (typeof pattern !== "string") {
    throw new TypeError("regexOutput takes the pattern's text (Rust regex syntax), not a RegExp");
  }
  return { format: { case: "regex", value: pattern } };
}

/** The output follows a Lark grammar (llguidance's dialect; `start` is the start rule). */
export function larkGrammarOutput(grammar: string): StructuredOutputInit {
  return { format: { case: "grammar", value: { syntax: Grammar_Syntax.LARK, text: grammar } } };
}

/** The output follows a GBNF grammar (llama.cpp's notation; `root` is the start rule). */
export function gbnfGrammarOutput(grammar: string): StructuredOutputInit {
  return { format: { case: "grammar", value: { syntax: Grammar_Syntax.GBNF, text: grammar } } };
}

/** The output is exactly one of `options` (1 to 256 strings). */
export function choiceOutput(options: readonly string[]): StructuredOutputInit {
  return { format: { case: "choice", value: { options: [...options] } } };
}

/** `sampling.logitBias` as the request wants it: token id -> bias. */
export type LogitBiasInit = { [tokenId: number]: number };

/**
 * A `sampling.logitBias` from a Map, an object or [id, bias] pairs: token id
 * -> bias in [-100, 100] added to its logit (-100 bans the token, +100 makes
 * it the choice wherever it is allowed). At most 300 entries; the server
 * checks the ranges. Throws on an id that is not a uint32 or a bias that is
 * not a finite number.
 */
export function logitBias(
  bias: ReadonlyMap<number, number> | Iterable<readonly [number, number]> | { readonly [tokenId: number]: number },
): LogitBiasInit {
  const entries: Iterable<readonly [number | string, number]> =
    Symbol.iterator in bias ? (bias as Iterable<readonly [number, number]>) : Object.entries(bias);
  const out: LogitBiasInit = {};
  for (const [key, value] of entries) {
    const id = typeof key === "string" && /^\d+$/.test(key) ? Number(key) : key;
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 0xffff_ffff) {
      throw new RangeError(`logit bias: token id ${JSON.stringify(key)} is not an integer in [0, 2^32)`);
    }
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new RangeError(`logit bias: the bias of token ${id} is not a finite number`);
    }
    out[id] = value;
  }
  return out;
}

/** Speculative decoding methods, by the names {@link GenerateOptions.speculation} takes. */
const SPECULATION = {
  off: SpeculativeOptions_SpeculativeMethod.OFF,
  ngram: SpeculativeOptions_SpeculativeMethod.NGRAM,
  eagle3: SpeculativeOptions_SpeculativeMethod.EAGLE3,
} as const;

/**
 * Every option of a GenerateRequest as one flat object (for
 * {@link generateRequest}); absent ones take the server's or engine's
 * defaults. The names follow the proto fields (tokenwire.v1.GenerateRequest
 * and its SamplingParams, StoppingCriteria, OutputOptions,
 * SpeculativeOptions).
 */
export interface GenerateOptions {
  /** The request id (Sessions need one; Generate makes one when absent). */
  requestId?: string;
  // sampling
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number | bigint;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Token id -> bias in [-100, 100]: a Map, an object or pairs (see {@link logitBias}). */
  logitBias?: Parameters<typeof logitBias>[0];
  // stopping
  maxTokens?: number;
  minTokens?: number;
  stop?: readonly string[];
  stopTokenIds?: readonly number[];
  ignoreEos?: boolean;
  // output
  /** Send the token ids of each delta (OutputOptions.token_ids). */
  includeTokenIds?: boolean;
  /** Send the text of each delta (OutputOptions.text). */
  includeText?: boolean;
  logprobs?: boolean;
  topLogprobs?: number;
  // speculative decoding
  /** The drafter for this generation; absent: the server's default (see GetModelInfo). */
  speculation?: keyof typeof SPECULATION;
  /** Most draft tokens per step; absent: the server's default. */
  draftLength?: number;
  /**
   * Server-side time limit: when it passes the generation ends with
   * FINISH_REASON_DEADLINE, keeping its output (unlike a call's `timeoutMs`,
   * which fails the call).
   */
  timeLimitMs?: number;
  /** Samples of this prompt (GenerateRequest.n). */
  n?: number;
  /** Use {@link jsonSchemaOutput}, {@link regexOutput}, {@link choiceOutput}... */
  structuredOutput?: StructuredOutputInit;
}

/**
 * A GenerateRequest from a prompt (a string is a text prompt; else use
 * {@link textPrompt}, {@link chatPrompt} or {@link tokenPrompt}) and flat
 * {@link GenerateOptions}. Sub-messages are set only when one of their
 * options is.
 */
export function generateRequest(prompt: string | PromptInit, options: GenerateOptions = {}): GenerateRequestInit {
  const request: GenerateRequestInit = { input: typeof prompt === "string" ? textPrompt(prompt) : prompt };
  const o = options;
  const pick = <K extends keyof GenerateOptions>(...keys: K[]): Pick<GenerateOptions, K> | undefined => {
    const out: Partial<GenerateOptions> = {};
    for (const key of keys) {
      if (o[key] !== undefined) {
        out[key] = o[key];
      }
    }
    return Object.keys(out).length > 0 ? (out as Pick<GenerateOptions, K>) : undefined;
  };
  if (o.requestId !== undefined) {
    request.requestId = o.requestId;
  }
  const sampling = pick("temperature", "topP", "topK", "minP", "repetitionPenalty", "presencePenalty", "frequencyPenalty");
  if (sampling !== undefined || o.seed !== undefined || o.logitBias !== undefined) {
    request.sampling = {
      ...sampling,
      ...(o.seed !== undefined ? { seed: BigInt(o.seed) } : {}),
      ...(o.logitBias !== undefined ? { logitBias: logitBias(o.logitBias) } : {}),
    };
  }
  const stopping = pick("maxTokens", "minTokens", "ignoreEos");
  if (stopping !== undefined || o.stop !== undefined || o.stopTokenIds !== undefined) {
    request.stopping = {
      ...stopping,
      ...(o.stop !== undefined ? { stop: [...o.stop] } : {}),
      ...(o.stopTokenIds !== undefined ? { stopTokenIds: [...o.stopTokenIds] } : {}),
    };
  }
  const output = pick("logprobs", "topLogprobs");
  if (output !== undefined || o.includeTokenIds !== undefined || o.includeText !== undefined) {
    request.output = {
      ...output,
      ...(o.includeTokenIds !== undefined ? { tokenIds: o.includeTokenIds } : {}),
      ...(o.includeText !== undefined ? { text: o.includeText } : {}),
    };
  }
  if (o.speculation !== undefined || o.draftLength !== undefined) {
    const method = o.speculation === undefined ? undefined : SPECULATION[o.speculation];
    if (o.speculation !== undefined && method === undefined) {
      throw new RangeError(`speculation is one of ${Object.keys(SPECULATION).join(", ")}, not ${String(o.speculation)}`);
    }
    request.speculative = {
      ...(method !== undefined ? { method } : {}),
      ...(o.draftLength !== undefined ? { draftLength: o.draftLength } : {}),
    };
  }
  if (o.timeLimitMs !== undefined) {
    request.timeout = durationFromMs(o.timeLimitMs);
  }
  if (o.n !== undefined) {
    request.n = o.n;
  }
  if (o.structuredOutput !== undefined) {
    request.structuredOutput = o.structuredOutput;
  }
  return request;
}

/** How many samples `request` asks for (`n`; absent or 0 means 1). */
export function sampleCount(request: Pick<GenerateRequestInit, "n">): number {
  const n = request.n ?? 0;
  return n === 0 ? 1 : n;
}

/** One event of a generation, from Generate or from a Session. */
export type GenerationEvent =
  | { readonly case: "started"; readonly requestId: string; readonly value: Started }
  | { readonly case: "delta"; readonly requestId: string; readonly value: Delta }
  | { readonly case: "finished"; readonly requestId: string; readonly value: Finished };

/**
 * The outcome of a generation that ran to its `finished` event; with n > 1,
 * of one of its samples.
 */
export interface GenerationResult {
  readonly requestId: string;
  /** Which sample this is (0 to n - 1; 0 when the request asked for one). */
  readonly sampleIndex: number;
  /** The whole output text (the deltas' text concatenated). */
  readonly text: string;
  /** The output token ids (empty when OutputOptions.token_ids is false). */
  readonly tokenIds: readonly number[];
  readonly reason: FinishReason;
  /** The reason's proto name, for example "FINISH_REASON_LENGTH". */
  readonly reasonName: string;
  /**
   * Tokens in the prompt (the `started` event's count; with n > 1 the same
   * for every sample, whereas `finished.usage.promptTokens` counts the prompt
   * in the first sample to finish only, so that usage adds up).
   */
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** The `finished` event itself (stop matched, usage, timing, speculation). */
  readonly finished: Finished;
}

/** The proto name of a finish reason, for example "FINISH_REASON_CANCELLED". */
export function finishReasonName(reason: FinishReason): string {
  return FinishReasonSchema.value[reason]?.name ?? `FINISH_REASON_${reason}`;
}

/**
 * The gRPC name of a status code, as other gRPC libraries print it, for
 * example "PERMISSION_DENIED" for Code.PermissionDenied.
 */
export function statusCodeName(code: Code): string {
  if (code === Code.Canceled) {
    return "CANCELLED";
  }
  const name = Code[code] as string | undefined;
  return name === undefined ? `CODE_${code}` : name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * A generation that failed inside a Session (its `error` event), with the
 * same code and details that Generate would have failed with; the details are
 * decoded by the {@link TokenwireError} accessors.
 */
export class GenerationError extends TokenwireError {
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && GenerationError.prototype.isPrototypeOf(value);
  }

  declare readonly requestId: string;

  constructor(
    requestId: string,
    readonly status: Status,
  ) {
    super(status.message, status.code in Code ? (status.code as Code) : Code.Unknown, { requestId });
    for (const detail of status.details) {
      this.details.push({ type: detail.typeUrl.slice(detail.typeUrl.lastIndexOf("/") + 1), value: detail.value });
    }
  }
}

/** The sample an event belongs to (`started` is shared: 0). */
function sampleIndexOf(event: GenerationEvent): number {
  return event.case === "started" ? 0 : event.value.sampleIndex;
}

interface SampleParts {
  text: string;
  readonly tokenIds: number[];
  finished: Finished | undefined;
}

/**
 * Folds a generation's events into one {@link GenerationResult} per sample,
 * checking that each event names a sample of the request and that no sample
 * goes on after its `finished` event.
 */
class Accumulator {
  private started: Started | undefined;
  private readonly samples: SampleParts[];
  private finishedCount = 0;

  constructor(
    private requestId: string,
    readonly n: number,
  ) {
    this.samples = Array.from({ length: n }, () => ({ text: "", tokenIds: [], finished: undefined }));
  }

  /** Every sample has its `finished` event. */
  get complete(): boolean {
    return this.finishedCount === this.n;
  }

  /** Adds one event; throws a TokenwireError (INTERNAL) on an event the stream cannot carry. */
  add(event: GenerationEvent): void {
    this.requestId = event.requestId;
    if (event.case === "started") {
      this.started = event.value;
      return;
    }
    const index = event.value.sampleIndex;
    const part = this.samples[index];
    if (part === undefined) {
      throw protocolError(
        `generation stream sent an event for sample ${index} of a request for ${this.n} sample(s)`,
        this.requestId,
      );
    }
    if (part.finished !== undefined) {
      throw protocolError(`generation stream went on with sample ${index} after its finished event`, this.requestId);
    }
    if (event.case === "delta") {
      part.text += event.value.text;
      part.tokenIds.push(...event.value.tokenIds);
    } else {
      part.finished = event.value;
      this.finishedCount += 1;
    }
  }

  /** One result per sample, by index; throws unless every sample has finished. */
  results(): GenerationResult[] {
    if (!this.complete) {
      const missing = this.samples.flatMap((part, index) => (part.finished === undefined ? [index] : []));
      throw protocolError(
        this.n === 1
          ? "generation stream ended without a finished event"
          : `generation stream ended without a finished event for sample(s) ${missing.join(", ")} of ${this.n}`,
        this.requestId,
      );
    }
    return this.samples.map((part, sampleIndex) => {
      const finished = part.finished as Finished;
      return {
        requestId: this.requestId,
        sampleIndex,
        text: part.text,
        tokenIds: part.tokenIds,
        reason: finished.reason,
        reasonName: finishReasonName(finished.reason),
        promptTokens: this.started?.promptTokens ?? finished.usage?.promptTokens ?? 0,
        completionTokens: finished.usage?.completionTokens ?? 0,
        finished,
      };
    });
  }
}

function checkSampleCount(n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`a request asks for at least one sample, not ${n}`);
  }
}

/**
 * Reads a one-sample generation's events to the end and returns its result.
 * A stream with several samples (GenerateRequest.n > 1) is refused: use
 * {@link collectSamples}.
 */
export async function collect(events: AsyncIterable<GenerationEvent>, requestId = ""): Promise<GenerationResult> {
  const acc = new Accumulator(requestId, 1);
  for await (const event of events) {
    const index = sampleIndexOf(event);
    if (index !== 0) {
      throw new Error(
        `collect() reads a generation of one sample, but this stream has sample ${index} ` +
          "(GenerateRequest.n > 1): use collectSamples(events, n)",
      );
    }
    acc.add(event);
  }
  const [result] = acc.results();
  return result as GenerationResult;
}

/**
 * Reads the events of a generation of `n` samples (GenerateRequest.n) to the
 * end and returns one result per sample, by sample index. Throws when the
 * stream ends before every sample's `finished` event.
 */
export async function collectSamples(
  events: AsyncIterable<GenerationEvent>,
  n: number,
  requestId = "",
): Promise<GenerationResult[]> {
  checkSampleCount(n);
  const acc = new Accumulator(requestId, n);
  for await (const event of events) {
    acc.add(event);
  }
  return acc.results();
}

/**
 * Notes the `finished` event of each sample of a plain (not collected)
 * generation stream, so that a stream ending early fails instead of ending
 * silently: the gRPC status was OK, but the generation did not complete.
 */
class FinishedTracker {
  private readonly finished = new Set<number>();

  constructor(readonly n: number) {}

  see(event: GenerationEvent): void {
    if (event.case === "finished") {
      this.finished.add(event.value.sampleIndex);
    }
  }

  /** Throws a TokenwireError (INTERNAL: a protocol violation) unless every sample has finished. */
  check(requestId: string | undefined): void {
    if (this.finished.size >= this.n) {
      return;
    }
    const missing = Array.from({ length: this.n }, (_, i) => i).filter((i) => !this.finished.has(i));
    throw protocolError(
      this.n === 1
        ? "generation stream ended without a finished event"
        : `generation stream ended without a finished event for sample(s) ${missing.join(", ")} of ${this.n}`,
      requestId,
    );
  }
}

function toEvent(response: GenerateResponse | SessionResponse): GenerationEvent | undefined {
  const { requestId, event } = response;
  switch (event.case) {
    case "started":
      return { case: "started", requestId, value: event.value };
    case "delta":
      return { case: "delta", requestId, value: event.value };
    case "finished":
      return { case: "finished", requestId, value: event.value };
    default:
      return undefined;
  }
}

/**
 * The events of one Generate call (see {@link TokenwireClient.generate}): an
 * async generator, and AsyncDisposable so that `await using` cancels the call
 * when the block is left early (as `break` or `return()` do).
 */
export interface GenerationStream extends AsyncGenerator<GenerationEvent, void, undefined>, AsyncDisposable {
  [Symbol.asyncDispose](): Promise<void>;
  /**
   * The Generate calls made for this generation so far: 0 until iteration
   * starts, then 1 plus the retries (see {@link RetryPolicy}). Read it once
   * the stream has ended (or thrown) for the total.
   */
  readonly attempts: number;
}

/** The reports of a WatchLoad call (see {@link TokenwireClient.watchLoad}); `await using` cancels it. */
export interface LoadStream extends AsyncGenerator<GetLoadResponse, void, undefined>, AsyncDisposable {
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Per-call options: `timeoutMs` is the call's deadline (every attempt and the
 * waits between them), `signal` cancels the call, `headers` are sent with it,
 * `retry` overrides fields of the client's {@link RetryPolicy} for this call
 * (`false`: no retries).
 */
export type CallOpts = Pick<CallOptions, "timeoutMs" | "signal" | "headers"> & { retry?: RetryOption };

export interface TokenwireClientOptions {
  /**
   * Use this transport instead of a gRPC (HTTP/2) one to `target`; `tls`,
   * `token` and `interceptors` are then the transport's business.
   */
  transport?: Transport;
  /** Interceptors for the default transport. */
  interceptors?: Interceptor[];
  /**
   * TLS: `true` verifies the server against Node's default roots; an object
   * names a CA file and/or a client certificate and key (mTLS). A target
   * written as `https://host:port` turns TLS on too. Default: plaintext.
   */
  tls?: boolean | TlsOptions;
  /**
   * A bearer token, sent as `authorization: Bearer <token>` with every call
   * (unary and streaming; on plaintext connections too). Visible ASCII, at
   * most 4096 bytes.
   */
  token?: string;
  /**
   * Retries of UNAVAILABLE and RESOURCE_EXHAUSTED before anything of the call
   * was received: fields over the defaults (4 attempts, 200 ms doubling to
   * 5 s with equal jitter, RetryInfo honoured up to 30 s); `false` disables
   * them. See {@link RetryPolicy}.
   */
  retry?: RetryOption;
}

/** Aborts `controller` when `signal` does; returns the function that unlinks them. */
function linkSignal(signal: AbortSignal | undefined, controller: AbortController): () => void {
  if (signal === undefined) {
    return () => undefined;
  }
  if (signal.aborted) {
    controller.abort(signal.reason);
    return () => undefined;
  }
  const onAbort = (): void => controller.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}

/** A target with a scheme ("http://...", "https://...") is used as is. */
const HAS_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * The base URL of `target` ("host:port" or a URL) and the HTTP/2 session
 * options for `tls`; throws on contradictions (TLS asked of an http:// URL).
 */
function connectionOf(
  target: string,
  tls: boolean | TlsOptions | undefined,
): { baseUrl: string; sessionOptions: SecureClientSessionOptions | undefined } {
  if (!HAS_SCHEME.test(target)) {
    const secure = tls !== undefined && tls !== false;
    return {
      baseUrl: `${secure ? "https" : "http"}://${target}`,
      sessionOptions: secure ? tlsSessionOptions(tls === true ? {} : tls) : undefined,
    };
  }
  const scheme = target.slice(0, target.indexOf(":")).toLowerCase();
  if (scheme === "https") {
    if (tls === false) {
      throw new Error(`tls: false contradicts the target ${target}`);
    }
    return { baseUrl: target, sessionOptions: tlsSessionOptions(tls === undefined || tls === true ? {} : tls) };
  }
  if (tls !== undefined && tls !== false) {
    throw new Error(`tls needs a host:port or https:// target, not ${target}`);
  }
  return { baseUrl: target, sessionOptions: undefined };
}

/**
 * A tokenwire client: streaming generation, sessions, abort, and the raw
 * ModelService client.
 *
 * ```ts
 * const client = new TokenwireClient("127.0.0.1:50051");
 * for await (const event of client.generate({ input: textPrompt("Hello"), stopping: { maxTokens: 16 } })) {
 *   if (event.case === "delta") process.stdout.write(event.value.text);
 * }
 * client.close();
 * ```
 */
export class TokenwireClient {
  /** The generated GenerationService client, for anything the wrapper does not cover. */
  readonly generation: Client<typeof GenerationService>;
  /** The generated ModelService client (the wrapper's getModelInfo, getLoad, watchLoad, tokenize and detokenize use it). */
  readonly models: Client<typeof ModelService>;
  /** The client's retry policy (every field set); calls may override it with `retry`. */
  readonly retryPolicy: ResolvedRetryPolicy;
  private readonly sessionManager: Http2SessionManager | undefined;

  constructor(target: string, options: TokenwireClientOptions = {}) {
    this.retryPolicy = resolveRetryPolicy(DEFAULT_RETRY_POLICY, options.retry);
    let transport = options.transport;
    if (transport === undefined) {
      const { baseUrl, sessionOptions } = connectionOf(target, options.tls);
      const interceptors = [...(options.interceptors ?? [])];
      if (options.token !== undefined) {
        interceptors.push(bearerToken(options.token));
      }
      this.sessionManager = new Http2SessionManager(baseUrl, {}, sessionOptions);
      transport = createGrpcTransport({ baseUrl, sessionManager: this.sessionManager, interceptors });
    } else if (options.tls !== undefined || options.token !== undefined || options.interceptors !== undefined) {
      throw new Error("tls, token and interceptors apply to the default transport, not to options.transport");
    }
    this.generation = createClient(GenerationService, transport);
    this.models = createClient(ModelService, transport);
  }

  /**
   * Streams one generation's events: one `started`, any number of `delta`,
   * one `finished`; with `n` > 1, the deltas of every sample interleaved and
   * one `finished` per sample (each carries its `sampleIndex`), the stream
   * ending after the last of them. Failures (bad input, deadline...) throw
   * {@link TokenwireError} (a ConnectError with the details decoded), and so
   * does a stream that ends before every sample's `finished` event (INTERNAL,
   * a protocol violation). Breaking out of the loop, `signal` or `timeoutMs` cancels
   * the generation.
   */
  generate(request: GenerateRequestInit, options: CallOpts = {}): GenerationStream {
    const counter = { attempts: 0 };
    const stream = this.stream(request, options, counter) as AsyncGenerator<GenerationEvent, void, undefined> &
      AsyncDisposable;
    stream[Symbol.asyncDispose] = async () => {
      await stream.return(undefined);
    };
    Object.defineProperty(stream, "attempts", { get: () => counter.attempts, enumerable: true });
    return stream as GenerationStream;
  }

  private async *stream(
    request: GenerateRequestInit,
    options: CallOpts,
    counter: { attempts: number },
  ): AsyncGenerator<GenerationEvent, void, undefined> {
    const { retry, timeoutMs, signal, ...callOptions } = options;
    const policy = resolveRetryPolicy(this.retryPolicy, retry);
    const deadline = new Deadline(timeoutMs);
    const finished = new FinishedTracker(sampleCount(request));
    let requestId = request.requestId;
    let received = false;
    // The call's own signal, so that every way out (break, return(), an
    // exception in the loop body, `await using`) cancels the call on any
    // transport, not only on those that cancel when the response is dropped.
    const controller = new AbortController();
    const unlink = linkSignal(signal, controller);
    let completed = false;
    try {
      for (let attempt = 1; ; attempt += 1) {
        try {
          const timeout = deadline.remainingMs(requestId);
          counter.attempts = attempt;
          const call = this.generation.generate(request, {
            ...callOptions,
            signal: controller.signal,
            timeoutMs: timeout,
          });
          for await (const response of call) {
            received = true;
            const event = toEvent(response);
            if (event !== undefined) {
              requestId = event.requestId;
              finished.see(event);
              yield event;
            }
          }
          break;
        } catch (error) {
          const failure = TokenwireError.of(error, requestId);
          // Retried only before the first event: a generation is never replayed.
          if (received || !(await backoff(policy, attempt, failure, deadline, controller.signal))) {
            throw failure;
          }
        }
      }
      completed = true;
    } finally {
      unlink();
      if (!completed) {
        controller.abort(new ConnectError("generation stream closed by the client", Code.Canceled));
      }
    }
    finished.check(requestId);
  }

  /**
   * Runs one generation to its end and returns the text and finish reason.
   * A request for several samples (`n` > 1) is refused before it is sent:
   * use {@link completeSamples}.
   */
  complete(request: GenerateRequestInit, options: CallOpts = {}): Promise<GenerationResult> {
    const n = sampleCount(request);
    if (n !== 1) {
      return Promise.reject(
        new Error(`complete() returns one completion, but the request asks for n=${n} samples: use completeSamples()`),
      );
    }
    return collect(this.generate(request, options), request.requestId ?? "");
  }

  /**
   * Runs one generation to its end and returns one result per sample
   * (`request.n`, default 1), by sample index.
   */
  completeSamples(request: GenerateRequestInit, options: CallOpts = {}): Promise<GenerationResult[]> {
    return collectSamples(this.generate(request, options), sampleCount(request), request.requestId ?? "");
  }

  /** Cancels a generation by id, wherever it runs; true if one was in flight. */
  async abort(requestId: string, options: CallOpts = {}): Promise<boolean> {
    const response = await this.unary((o) => this.generation.abort({ requestId }, o), options, requestId);
    return response.cancelled;
  }

  // --- ModelService ------------------------------------------------------------------------------

  /** The served model: name, engine, context length, speculation, structured output kinds, max samples... */
  getModelInfo(options: CallOpts = {}): Promise<GetModelInfoResponse> {
    return this.unary((o) => this.models.getModelInfo({}, o), options);
  }

  /** The server's load now: active, waiting and in-flight requests, slots, KV cache and CPU use. */
  getLoad(options: CallOpts = {}): Promise<GetLoadResponse> {
    return this.unary((o) => this.models.getLoad({}, o), options);
  }

  /**
   * The load every `intervalMs` (absent: the server's default), until the
   * loop is left, `signal` aborts or `timeoutMs` passes; `await using` and
   * `break` cancel the call. Retried per the policy before the first report
   * only.
   */
  watchLoad(intervalMs?: number, options: CallOpts = {}): LoadStream {
    const stream = this.loadStream(intervalMs, options) as LoadStream;
    stream[Symbol.asyncDispose] = async () => {
      await stream.return(undefined);
    };
    return stream;
  }

  private async *loadStream(intervalMs: number | undefined, options: CallOpts): AsyncGenerator<GetLoadResponse, void, undefined> {
    const { retry, timeoutMs, signal, ...callOptions } = options;
    const policy = resolveRetryPolicy(this.retryPolicy, retry);
    const deadline = new Deadline(timeoutMs);
    const controller = new AbortController();
    const unlink = linkSignal(signal, controller);
    const request = intervalMs === undefined ? {} : { interval: durationFromMs(intervalMs) };
    let received = false;
    try {
      for (let attempt = 1; ; attempt += 1) {
        try {
          const call = this.models.watchLoad(request, {
            ...callOptions,
            signal: controller.signal,
            timeoutMs: deadline.remainingMs(),
          });
          for await (const response of call) {
            received = true;
            if (response.load !== undefined) {
              yield response.load;
            }
          }
          return;
        } catch (error) {
          const failure = TokenwireError.of(error);
          if (received || !(await backoff(policy, attempt, failure, deadline, controller.signal))) {
            throw failure;
          }
        }
      }
    } finally {
      unlink();
      controller.abort(new ConnectError("load stream closed by the client", Code.Canceled));
    }
  }

  /**
   * The token ids of a text, or of a chat rendered with the model's template
   * (then `renderedPrompt` is the text it became).
   */
  tokenize(
    input: string | ReadonlyArray<Pick<ChatMessage, "role" | "content">>,
    options: CallOpts = {},
  ): Promise<TokenizeResponse> {
    const request =
      typeof input === "string"
        ? { input: { case: "text" as const, value: input } }
        : { input: { case: "chat" as const, value: { messages: input.map((m) => ({ role: m.role, content: m.content })) } } };
    return this.unary((o) => this.models.tokenize(request, o), options);
  }

  /** The text of `tokenIds` (special tokens dropped unless `keepSpecialTokens`). */
  async detokenize(
    tokenIds: readonly number[],
    options: CallOpts & { keepSpecialTokens?: boolean } = {},
  ): Promise<string> {
    const { keepSpecialTokens, ...callOptions } = options;
    const response = await this.unary(
      (o) => this.models.detokenize({ tokenIds: [...tokenIds], keepSpecialTokens: keepSpecialTokens ?? false }, o),
      callOptions,
    );
    return response.text;
  }

  /** One unary call, retried per the policy; failures thrown as TokenwireError. */
  private async unary<T>(
    call: (options: CallOptions) => Promise<T>,
    options: CallOpts,
    requestId?: string,
  ): Promise<T> {
    const { retry, timeoutMs, ...callOptions } = options;
    const policy = resolveRetryPolicy(this.retryPolicy, retry);
    const deadline = new Deadline(timeoutMs);
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await call({ ...callOptions, timeoutMs: deadline.remainingMs(requestId) });
      } catch (error) {
        const failure = TokenwireError.of(error, requestId);
        if (!(await backoff(policy, attempt, failure, deadline, callOptions.signal))) {
          throw failure;
        }
      }
    }
  }

  /** Opens a Session stream: many generations multiplexed on one call. */
  session(options: CallOpts = {}): Session {
    return new Session(
      this.generation,
      { ...options, retry: resolveRetryPolicy(this.retryPolicy, options.retry) },
      (requestId, headers) => this.abort(requestId, { headers }),
    );
  }

  /** Closes the connection (calls in flight fail). */
  close(): void {
    this.sessionManager?.abort();
  }
}

/**
 * Many generations on one bidirectional stream. `start` returns a
 * {@link SessionGeneration} for its id; `close` half-closes (generations in
 * flight run to completion); `abort` cancels the whole stream.
 */
export class Session {
  /** Settles when the server ends the stream: resolved on OK, rejected with its error. */
  readonly closed: Promise<void>;
  private readonly requests = new AsyncQueue<MessageInitShape<typeof SessionRequestSchema>>();
  private readonly inFlight = new Map<string, SessionGeneration>();
  private readonly controller = new AbortController();
  private ended = false;
  private readonly headers: CallOpts["headers"];
  private readonly policy: ResolvedRetryPolicy;
  private readonly deadline: Deadline;
  /** Generations refused with a retryable code, waiting to be started again. */
  private readonly waiting = new Map<
    string,
    { timer: ReturnType<typeof setTimeout>; failure: GenerationError; generation: SessionGeneration }
  >();

  /** @internal Created by {@link TokenwireClient.session}. */
  constructor(
    client: Client<typeof GenerationService>,
    options: CallOpts,
    private readonly abortRpc: (requestId: string, headers: CallOpts["headers"]) => Promise<boolean> = (requestId) =>
      client.abort({ requestId }, { headers: options.headers }).then((r) => r.cancelled),
  ) {
    const { signal, retry, ...rest } = options;
    this.headers = options.headers;
    this.policy = resolveRetryPolicy(DEFAULT_RETRY_POLICY, retry);
    this.deadline = new Deadline(options.timeoutMs);
    linkSignal(signal, this.controller);
    // connect wants an AsyncGenerator (it calls throw() on failure), not just an AsyncIterable.
    const requests = this.requests;
    async function* outgoing(): AsyncGenerator<MessageInitShape<typeof SessionRequestSchema>> {
      yield* requests;
    }
    const responses = client.session(outgoing(), { ...rest, signal: this.controller.signal });
    this.closed = this.pump(responses);
    this.closed.catch(() => undefined);
  }

  /**
   * Starts a generation; its `requestId` must not be in flight on this
   * session. `options.signal` cancels this generation alone, as its
   * `cancel()` does (it ends with FINISH_REASON_CANCELLED); a signal already
   * aborted fails it with CANCELLED without sending it.
   */
  start(request: SessionStartInit, options: { signal?: AbortSignal } = {}): SessionGeneration {
    const { requestId } = request;
    if (this.ended || this.requests.isEnded) {
      throw new Error("session is closed");
    }
    if (this.inFlight.has(requestId)) {
      throw new Error(`request id ${JSON.stringify(requestId)} is already in flight on this session`);
    }
    const generation = new SessionGeneration(requestId, sampleCount(request), () => this.cancel(requestId), request);
    const { signal } = options;
    if (signal?.aborted === true) {
      generation.fail(
        new TokenwireError("generation cancelled before it was sent", Code.Canceled, { requestId, cause: signal.reason }),
      );
      return generation;
    }
    if (signal !== undefined) {
      const onAbort = (): void => generation.cancel();
      signal.addEventListener("abort", onAbort, { once: true });
      generation.results().then(
        () => signal.removeEventListener("abort", onAbort),
        () => signal.removeEventListener("abort", onAbort),
      );
    }
    this.inFlight.set(requestId, generation);
    this.requests.push({ action: { case: "start", value: request } });
    return generation;
  }

  /**
   * Cancels one generation: it ends with FINISH_REASON_CANCELLED. Unknown ids
   * are ignored. After {@link close} the stream takes no more requests, so a
   * generation still in flight is cancelled with the Abort RPC instead (the
   * same connection and headers; its failure is ignored: the generation's own
   * outcome still arrives on the stream).
   */
  cancel(requestId: string): void {
    const waiting = this.waiting.get(requestId);
    if (waiting !== undefined) {
      // Refused and waiting to retry: not running anywhere, so it ends with its refusal.
      this.stopWaiting(requestId);
      return;
    }
    if (!this.requests.isEnded) {
      this.requests.push({ action: { case: "cancel", value: { requestId } } });
    } else if (!this.ended && this.inFlight.has(requestId)) {
      this.abortRpc(requestId, this.headers).catch(() => undefined);
    }
  }

  /** No more requests: generations in flight run to completion, then the stream ends. */
  close(): void {
    this.requests.end();
    for (const requestId of [...this.waiting.keys()]) {
      this.stopWaiting(requestId);
    }
  }

  /**
   * For `await using`: cancels whatever still runs on the session (as
   * {@link abort} does; nothing when every generation has ended), and waits
   * for the stream to end. Never throws.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.inFlight.size > 0) {
      this.abort();
    } else {
      this.close();
    }
    await this.closed.catch(() => undefined);
  }

  /** Cancels the stream and every generation on it. */
  abort(reason?: unknown): void {
    this.controller.abort(reason ?? new ConnectError("session aborted by the client", Code.Canceled));
  }

  /** Ids of the generations started and not yet finished. */
  get pending(): string[] {
    return [...this.inFlight.keys()];
  }

  private async pump(responses: AsyncIterable<SessionResponse>): Promise<void> {
    try {
      for await (const response of responses) {
        const generation = this.inFlight.get(response.requestId);
        if (generation === undefined) {
          continue;
        }
        if (response.event.case === "error") {
          const failure = new GenerationError(response.requestId, response.event.value);
          if (!this.scheduleRetry(generation, failure)) {
            this.inFlight.delete(response.requestId);
            generation.fail(failure);
          }
          continue;
        }
        const event = toEvent(response);
        if (event === undefined) {
          continue;
        }
        if (generation.deliver(event)) {
          this.inFlight.delete(response.requestId);
        }
      }
    } catch (error) {
      const failure = TokenwireError.of(error);
      this.failAll(failure);
      throw failure;
    } finally {
      this.ended = true;
      this.requests.end();
      for (const { timer } of this.waiting.values()) {
        clearTimeout(timer);
      }
      this.waiting.clear();
    }
    this.failAll(protocolError("session stream ended before the generation finished"));
  }

  /**
   * A generation refused before it started (no event yet) with a retryable
   * code is started again after the policy's wait, unless it was cancelled,
   * the session no longer takes requests, or the wait would pass the
   * session's deadline. True when a retry is scheduled.
   */
  private scheduleRetry(generation: SessionGeneration, failure: GenerationError): boolean {
    if (generation.received || generation.cancelRequested || this.requests.isEnded) {
      return false;
    }
    const delay = retryDelayMs(this.policy, generation.attempts, failure);
    if (delay === undefined || this.deadline.passedAfter(delay)) {
      return false;
    }
    const { requestId } = generation;
    const timer = setTimeout(() => {
      this.waiting.delete(requestId);
      if (this.requests.isEnded) {
        this.inFlight.delete(requestId);
        generation.fail(failure);
        return;
      }
      generation.attempts += 1;
      this.requests.push({ action: { case: "start", value: generation.request } });
    }, delay);
    this.waiting.set(requestId, { timer, failure, generation });
    return true;
  }

  /** Ends a generation waiting to retry with the refusal it got. */
  private stopWaiting(requestId: string): void {
    const waiting = this.waiting.get(requestId);
    if (waiting === undefined) {
      return;
    }
    clearTimeout(waiting.timer);
    this.waiting.delete(requestId);
    this.inFlight.delete(requestId);
    waiting.generation.fail(waiting.failure);
  }

  private failAll(error: ConnectError): void {
    for (const generation of this.inFlight.values()) {
      generation.fail(error);
    }
    this.inFlight.clear();
  }
}

/**
 * One generation of a Session. Iterate it for its events (buffered until
 * read; with n > 1 they run to the last sample's `finished` event), or await
 * `result()` (`results()` with n > 1) for the collected text and finish
 * reason; a failed generation throws its {@link GenerationError}.
 */
export class SessionGeneration implements AsyncIterable<GenerationEvent> {
  private readonly events = new AsyncQueue<GenerationEvent>();
  private readonly accumulator: Accumulator;
  private readonly done: Promise<GenerationResult[]>;
  private settle!: { resolve: (r: GenerationResult[]) => void; reject: (e: unknown) => void };
  private over = false;
  /** @internal Attempts made to start it (retries of a retryable refusal). */
  attempts = 1;
  /** @internal Some event of it has arrived (it is never retried after that). */
  received = false;
  /** @internal cancel() was called. */
  cancelRequested = false;

  /** @internal Created by {@link Session.start}. */
  constructor(
    readonly requestId: string,
    /** How many samples the generation was started with (its request's `n`). */
    readonly samples: number,
    private readonly cancelFn: () => void,
    /** @internal The start request, sent again on a retry. */
    readonly request: SessionStartInit = { requestId },
  ) {
    checkSampleCount(samples);
    this.accumulator = new Accumulator(requestId, samples);
    this.done = new Promise<GenerationResult[]>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.done.catch(() => undefined);
  }

  /** Cancels this generation (it ends with FINISH_REASON_CANCELLED, every sample). */
  cancel(): void {
    if (this.over) {
      return;
    }
    this.cancelRequested = true;
    this.cancelFn();
  }

  /** Whether the generation has ended (finished every sample, or failed). */
  get isDone(): boolean {
    return this.over;
  }

  /**
   * For `await using`: cancels the generation unless it has ended, and waits
   * for its end (never throws).
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.cancel();
    await this.done.catch(() => undefined);
  }

  /**
   * The generation's outcome, once its `finished` event has arrived. Refused
   * (rejected) for a generation of several samples: use `results()`.
   */
  result(): Promise<GenerationResult> {
    if (this.samples !== 1) {
      return Promise.reject(
        new Error(`result() gives one completion, but ${this.requestId} has n=${this.samples} samples: use results()`),
      );
    }
    return this.done.then((results) => results[0] as GenerationResult);
  }

  /** One result per sample, by sample index, once every sample's `finished` event has arrived. */
  results(): Promise<GenerationResult[]> {
    return this.done;
  }

  [Symbol.asyncIterator](): AsyncIterator<GenerationEvent> {
    return this.events[Symbol.asyncIterator]();
  }

  /** @internal Takes one event; true once the generation is over (every sample finished, or failed). */
  deliver(event: GenerationEvent): boolean {
    this.received = true;
    try {
      this.accumulator.add(event);
    } catch (error) {
      this.cancelFn();
      this.fail(error);
      return true;
    }
    this.events.push(event);
    if (this.accumulator.complete) {
      this.over = true;
      this.events.end();
      this.settle.resolve(this.accumulator.results());
      return true;
    }
    return false;
  }

  /** @internal */
  fail(error: unknown): void {
    this.over = true;
    this.events.fail(error);
    this.settle.reject(error);
  }
}
