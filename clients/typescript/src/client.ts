import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { CallOptions, Client, Interceptor, Transport } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import type { SecureClientSessionOptions } from "node:http2";

import type { Status } from "../gen/google/rpc/status_pb.js";
import {
  FinishReason,
  FinishReasonSchema,
  GenerationService,
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
} from "../gen/tokenwire/v1/generation_pb.js";
import { ModelService } from "../gen/tokenwire/v1/model_pb.js";
import { bearerToken, tlsSessionOptions } from "./credentials.js";
import type { TlsOptions } from "./credentials.js";
import { AsyncQueue } from "./queue.js";

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

/** One event of a generation, from Generate or from a Session. */
export type GenerationEvent =
  | { readonly case: "started"; readonly requestId: string; readonly value: Started }
  | { readonly case: "delta"; readonly requestId: string; readonly value: Delta }
  | { readonly case: "finished"; readonly requestId: string; readonly value: Finished };

/** The outcome of a generation that ran to its `finished` event. */
export interface GenerationResult {
  readonly requestId: string;
  /** The whole output text (the deltas' text concatenated). */
  readonly text: string;
  /** The output token ids (empty when OutputOptions.token_ids is false). */
  readonly tokenIds: readonly number[];
  readonly reason: FinishReason;
  /** The reason's proto name, for example "FINISH_REASON_LENGTH". */
  readonly reasonName: string;
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
 * same code and details that Generate would have failed with.
 */
export class GenerationError extends ConnectError {
  // ConnectError's brand check (its Symbol.hasInstance, inherited here) wants
  // name === "ConnectError", so `name` stays as is; `instanceof
  // GenerationError` checks the prototype chain.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && GenerationError.prototype.isPrototypeOf(value);
  }

  constructor(
    readonly requestId: string,
    readonly status: Status,
  ) {
    super(status.message, status.code in Code ? (status.code as Code) : Code.Unknown);
    for (const detail of status.details) {
      this.details.push({ type: detail.typeUrl.slice(detail.typeUrl.lastIndexOf("/") + 1), value: detail.value });
    }
  }
}

/** Folds events into a {@link GenerationResult}. */
class Accumulator {
  private text = "";
  private readonly tokenIds: number[] = [];
  private promptTokens = 0;
  result: GenerationResult | undefined;

  constructor(private requestId: string) {}

  add(event: GenerationEvent): void {
    this.requestId = event.requestId;
    switch (event.case) {
      case "started":
        this.promptTokens = event.value.promptTokens;
        break;
      case "delta":
        this.text += event.value.text;
        this.tokenIds.push(...event.value.tokenIds);
        break;
      case "finished": {
        const finished = event.value;
        this.result = {
          requestId: this.requestId,
          text: this.text,
          tokenIds: this.tokenIds,
          reason: finished.reason,
          reasonName: finishReasonName(finished.reason),
          promptTokens: finished.usage?.promptTokens ?? this.promptTokens,
          completionTokens: finished.usage?.completionTokens ?? 0,
          finished,
        };
        break;
      }
    }
  }
}

/** Reads a generation's events to the end and returns its result. */
export async function collect(events: AsyncIterable<GenerationEvent>, requestId = ""): Promise<GenerationResult> {
  const acc = new Accumulator(requestId);
  for await (const event of events) {
    acc.add(event);
  }
  if (acc.result === undefined) {
    throw new ConnectError("generation stream ended without a finished event", Code.Internal);
  }
  return acc.result;
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

/** Per-call options: `timeoutMs` is the gRPC deadline, `signal` cancels the call. */
export type CallOpts = Pick<CallOptions, "timeoutMs" | "signal" | "headers">;

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
  /** The generated ModelService client (GetModelInfo, GetLoad, Tokenize, Detokenize). */
  readonly models: Client<typeof ModelService>;
  private readonly sessionManager: Http2SessionManager | undefined;

  constructor(target: string, options: TokenwireClientOptions = {}) {
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
   * one `finished`. Failures (bad input, deadline...) throw ConnectError.
   * Breaking out of the loop, `signal` or `timeoutMs` cancels the generation.
   */
  async *generate(request: GenerateRequestInit, options: CallOpts = {}): AsyncGenerator<GenerationEvent, void, undefined> {
    for await (const response of this.generation.generate(request, options)) {
      const event = toEvent(response);
      if (event !== undefined) {
        yield event;
      }
    }
  }

  /** Runs one generation to its end and returns the text and finish reason. */
  complete(request: GenerateRequestInit, options: CallOpts = {}): Promise<GenerationResult> {
    return collect(this.generate(request, options), request.requestId ?? "");
  }

  /** Cancels a generation by id, wherever it runs; true if one was in flight. */
  async abort(requestId: string, options: CallOpts = {}): Promise<boolean> {
    const response = await this.generation.abort({ requestId }, options);
    return response.cancelled;
  }

  /** Opens a Session stream: many generations multiplexed on one call. */
  session(options: CallOpts = {}): Session {
    return new Session(this.generation, options);
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

  constructor(client: Client<typeof GenerationService>, options: CallOpts) {
    const { signal, ...rest } = options;
    if (signal !== undefined) {
      if (signal.aborted) {
        this.controller.abort(signal.reason);
      } else {
        signal.addEventListener("abort", () => this.controller.abort(signal.reason), { once: true });
      }
    }
    // connect wants an AsyncGenerator (it calls throw() on failure), not just an AsyncIterable.
    const requests = this.requests;
    async function* outgoing(): AsyncGenerator<MessageInitShape<typeof SessionRequestSchema>> {
      yield* requests;
    }
    const responses = client.session(outgoing(), { ...rest, signal: this.controller.signal });
    this.closed = this.pump(responses);
    this.closed.catch(() => undefined);
  }

  /** Starts a generation; its `requestId` must not be in flight on this session. */
  start(request: SessionStartInit): SessionGeneration {
    const { requestId } = request;
    if (this.ended || this.requests.isEnded) {
      throw new Error("session is closed");
    }
    if (this.inFlight.has(requestId)) {
      throw new Error(`request id ${JSON.stringify(requestId)} is already in flight on this session`);
    }
    const generation = new SessionGeneration(requestId, () => this.cancel(requestId));
    this.inFlight.set(requestId, generation);
    this.requests.push({ action: { case: "start", value: request } });
    return generation;
  }

  /** Cancels one generation: it ends with FINISH_REASON_CANCELLED. Unknown ids are ignored. */
  cancel(requestId: string): void {
    this.requests.push({ action: { case: "cancel", value: { requestId } } });
  }

  /** No more requests: generations in flight run to completion, then the stream ends. */
  close(): void {
    this.requests.end();
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
          this.inFlight.delete(response.requestId);
          generation.fail(new GenerationError(response.requestId, response.event.value));
          continue;
        }
        const event = toEvent(response);
        if (event === undefined) {
          continue;
        }
        generation.deliver(event);
        if (event.case === "finished") {
          this.inFlight.delete(response.requestId);
        }
      }
    } catch (error) {
      this.failAll(ConnectError.from(error));
      throw error;
    } finally {
      this.ended = true;
      this.requests.end();
    }
    this.failAll(new ConnectError("session stream ended before the generation finished", Code.Internal));
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
 * read), or await `result()` for the collected text and finish reason; a
 * failed generation throws its {@link GenerationError}.
 */
export class SessionGeneration implements AsyncIterable<GenerationEvent> {
  private readonly events = new AsyncQueue<GenerationEvent>();
  private readonly accumulator: Accumulator;
  private readonly done: Promise<GenerationResult>;
  private settle!: { resolve: (r: GenerationResult) => void; reject: (e: unknown) => void };

  /** @internal Created by {@link Session.start}. */
  constructor(
    readonly requestId: string,
    private readonly cancelFn: () => void,
  ) {
    this.accumulator = new Accumulator(requestId);
    this.done = new Promise<GenerationResult>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.done.catch(() => undefined);
  }

  /** Cancels this generation (it ends with FINISH_REASON_CANCELLED). */
  cancel(): void {
    this.cancelFn();
  }

  /** The generation's outcome, once its `finished` event has arrived. */
  result(): Promise<GenerationResult> {
    return this.done;
  }

  [Symbol.asyncIterator](): AsyncIterator<GenerationEvent> {
    return this.events[Symbol.asyncIterator]();
  }

  /** @internal */
  deliver(event: GenerationEvent): void {
    this.accumulator.add(event);
    this.events.push(event);
    if (event.case === "finished" && this.accumulator.result !== undefined) {
      this.events.end();
      this.settle.resolve(this.accumulator.result);
    }
  }

  /** @internal */
  fail(error: unknown): void {
    this.events.fail(error);
    this.settle.reject(error);
  }
}
