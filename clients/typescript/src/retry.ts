import { setTimeout as sleep } from "node:timers/promises";

import { Code } from "@connectrpc/connect";

import { TokenwireError } from "./errors.js";

/**
 * When and how long to wait before retrying a call that failed with a
 * retryable code (UNAVAILABLE or RESOURCE_EXHAUSTED by default).
 *
 * A call is retried only while nothing of it was received (a Generate stream
 * that delivered an event, or a Session generation that started, is never
 * replayed), at most `maxAttempts` attempts in all, and never past the call's
 * deadline (`timeoutMs`, which covers every attempt and the waits between
 * them). The wait is the server's `google.rpc.RetryInfo` delay when it sent
 * one (a delay above `maxRetryInfoDelayMs` is not waited for: the error is
 * thrown); otherwise exponential backoff with "equal jitter": attempt n waits
 * uniformly between b/2 and b, where
 * b = min(maxBackoffMs, initialBackoffMs * multiplier^(n-1)).
 */
export interface RetryPolicy {
  /** Attempts in all, the first one included (1 disables retries). Default 4. */
  readonly maxAttempts?: number;
  /** Default 200. */
  readonly initialBackoffMs?: number;
  /** Default 5000. */
  readonly maxBackoffMs?: number;
  /** Default 2. */
  readonly multiplier?: number;
  /** The longest RetryInfo delay waited for. Default 30000. */
  readonly maxRetryInfoDelayMs?: number;
  /** Default [Code.Unavailable, Code.ResourceExhausted]. */
  readonly retryableCodes?: readonly Code[];
  /** A uniform random number in [0, 1), for the jitter. Default Math.random. */
  readonly random?: () => number;
}

/** A policy with every field set. */
export type ResolvedRetryPolicy = Required<RetryPolicy>;

export const DEFAULT_RETRY_POLICY: ResolvedRetryPolicy = Object.freeze({
  maxAttempts: 4,
  initialBackoffMs: 200,
  maxBackoffMs: 5000,
  multiplier: 2,
  maxRetryInfoDelayMs: 30_000,
  retryableCodes: Object.freeze([Code.Unavailable, Code.ResourceExhausted]),
  random: Math.random,
});

/** `false` (or `{ maxAttempts: 1 }`) disables retries. */
export type RetryOption = RetryPolicy | false;

/** `override`'s fields over `base`'s, checked. */
export function resolveRetryPolicy(base: ResolvedRetryPolicy, override: RetryOption | undefined): ResolvedRetryPolicy {
  if (override === undefined) {
    return base;
  }
  if (override === false) {
    return { ...base, maxAttempts: 1 };
  }
  const defined = Object.fromEntries(Object.entries(override).filter(([, v]) => v !== undefined));
  const policy = { ...base, ...defined } as ResolvedRetryPolicy;
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1) {
    throw new RangeError(`RetryPolicy.maxAttempts must be an integer of at least 1, not ${policy.maxAttempts}`);
  }
  if (
    !(policy.initialBackoffMs >= 0) ||
    !(policy.maxBackoffMs >= 0) ||
    !(policy.multiplier >= 1) ||
    !(policy.maxRetryInfoDelayMs >= 0)
  ) {
    throw new RangeError("RetryPolicy: backoffs and maxRetryInfoDelayMs must be >= 0 and multiplier >= 1");
  }
  return policy;
}

/** The jittered wait in ms after failed attempt `attempt` (1-based), without RetryInfo. */
export function backoffMs(policy: ResolvedRetryPolicy, attempt: number): number {
  const ceiling = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** (attempt - 1));
  return ceiling / 2 + (ceiling / 2) * policy.random();
}

/** Ms to wait before attempt `attempt + 1`, or undefined when `error` is final. */
export function retryDelayMs(policy: ResolvedRetryPolicy, attempt: number, error: TokenwireError): number | undefined {
  if (!policy.retryableCodes.includes(error.code) || attempt >= policy.maxAttempts) {
    return undefined;
  }
  const seconds = error.retryDelaySeconds;
  if (seconds !== undefined) {
    const ms = seconds * 1000;
    if (!Number.isFinite(ms) || ms > policy.maxRetryInfoDelayMs) {
      return undefined;
    }
    return Math.max(0, ms);
  }
  return backoffMs(policy, attempt);
}

/** A call's deadline, from its `timeoutMs` (undefined: none). */
export class Deadline {
  private readonly at: number | undefined;

  constructor(timeoutMs: number | undefined) {
    this.at = timeoutMs === undefined || timeoutMs <= 0 ? undefined : performance.now() + timeoutMs;
  }

  /** The ms left for the next attempt; throws DEADLINE_EXCEEDED when none are. */
  remainingMs(requestId?: string): number | undefined {
    if (this.at === undefined) {
      return undefined;
    }
    const left = Math.floor(this.at - performance.now());
    if (left <= 0) {
      throw new TokenwireError("deadline passed before the call", Code.DeadlineExceeded, { requestId });
    }
    return left;
  }

  /** Whether waiting `ms` would reach the deadline. */
  passedAfter(ms: number): boolean {
    return this.at !== undefined && performance.now() + ms >= this.at;
  }
}

/**
 * Waits before the next attempt and returns true, or returns false when
 * `error` is final (not retryable, attempts used up, or the wait would reach
 * the deadline). An aborted `signal` ends the wait with CANCELLED.
 */
export async function backoff(
  policy: ResolvedRetryPolicy,
  attempt: number,
  error: TokenwireError,
  deadline: Deadline,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const delay = retryDelayMs(policy, attempt, error);
  if (delay === undefined || deadline.passedAfter(delay)) {
    return false;
  }
  try {
    await sleep(delay, undefined, signal === undefined ? undefined : { signal });
  } catch (cause) {
    throw new TokenwireError("call cancelled while waiting to retry", Code.Canceled, {
      requestId: error.requestId,
      cause,
    });
  }
  return true;
}
