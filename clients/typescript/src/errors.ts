import { Code, ConnectError } from "@connectrpc/connect";

import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";

/** One bad field of a request (`google.rpc.BadRequest`): `field` is a path such as `sampling.top_p`. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/** `google.rpc.ErrorInfo`: a machine-readable reason (for example `ENGINE_QUEUE_FULL`). */
export interface ErrorInfo {
  readonly reason: string;
  readonly domain: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** Every `google.rpc.BadRequest` field violation in the error's details, in order. */
export function fieldViolationsOf(error: ConnectError): FieldViolation[] {
  return error
    .findDetails(BadRequestSchema)
    .flatMap((bad) => bad.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
}

/**
 * The seconds the server asked the client to wait before retrying
 * (`google.rpc.RetryInfo`), or undefined when it did not say.
 */
export function retryDelaySecondsOf(error: ConnectError): number | undefined {
  const [info] = error.findDetails(RetryInfoSchema);
  if (info?.retryDelay === undefined) {
    return undefined;
  }
  return Number(info.retryDelay.seconds) + info.retryDelay.nanos / 1e9;
}

/** The error's `google.rpc.ErrorInfo`, or undefined when it has none. */
export function errorInfoOf(error: ConnectError): ErrorInfo | undefined {
  const [info] = error.findDetails(ErrorInfoSchema);
  if (info === undefined) {
    return undefined;
  }
  return { reason: info.reason, domain: info.domain, metadata: { ...info.metadata } };
}

/**
 * A failed call or generation: a ConnectError (so `instanceof ConnectError`,
 * `code`, `rawMessage`, `metadata` and `findDetails` work as usual) with the
 * server's rich error details decoded into typed accessors.
 *
 * Every error the wrapper throws (Generate, the unary calls, a Session and
 * its generations) is a TokenwireError; {@link TokenwireError.of} converts
 * an error of the raw generated clients.
 */
export class TokenwireError extends ConnectError {
  // ConnectError's brand check (its Symbol.hasInstance, inherited here) wants
  // name === "ConnectError", so `name` stays as is; `instanceof
  // TokenwireError` checks the prototype chain.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && TokenwireError.prototype.isPrototypeOf(value);
  }

  /** The generation's request id, when the error is about one (Session generations, named Generate calls). */
  readonly requestId: string | undefined;

  constructor(
    message: string,
    code: Code,
    options: { requestId?: string | undefined; metadata?: HeadersInit | undefined; cause?: unknown } = {},
  ) {
    super(message, code, options.metadata, undefined, options.cause);
    this.requestId = options.requestId;
  }

  /**
   * `error` as a TokenwireError: itself when it is one already, else a copy of
   * its code, message, metadata and details (a non-ConnectError is converted
   * as ConnectError.from does; the original is the `cause`).
   */
  static of(error: unknown, requestId?: string): TokenwireError {
    if (error instanceof TokenwireError) {
      return error;
    }
    const connect = ConnectError.from(error);
    const converted = new TokenwireError(connect.rawMessage, connect.code, {
      requestId: requestId === "" ? undefined : requestId,
      metadata: connect.metadata,
      cause: connect.cause ?? error,
    });
    converted.details.push(...connect.details);
    if (connect.stack !== undefined) {
      converted.stack = connect.stack;
    }
    return converted;
  }

  /** `google.rpc.BadRequest` field violations (INVALID_ARGUMENT names every bad field). */
  get fieldViolations(): FieldViolation[] {
    return fieldViolationsOf(this);
  }

  /** Seconds the server asked to wait before retrying (`google.rpc.RetryInfo`), if it said. */
  get retryDelaySeconds(): number | undefined {
    return retryDelaySecondsOf(this);
  }

  /** `google.rpc.ErrorInfo` (reason, domain, metadata), if the server sent one. */
  get errorInfo(): ErrorInfo | undefined {
    return errorInfoOf(this);
  }
}

/** A protocol violation: the server's stream broke the API's rules (INTERNAL). */
export function protocolError(message: string, requestId?: string): TokenwireError {
  return new TokenwireError(message, Code.Internal, { requestId });
}
