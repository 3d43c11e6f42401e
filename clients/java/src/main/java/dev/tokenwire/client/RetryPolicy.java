package dev.tokenwire.client;

import io.grpc.Status;
import java.time.Duration;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * When and how long to wait before retrying a call that failed with a retryable code
 * (UNAVAILABLE and RESOURCE_EXHAUSTED by default).
 *
 * <p>A call is retried only while nothing of it was received (a Generate stream that delivered an
 * event is never replayed), at most {@link #maxAttempts()} attempts in all, and never past the
 * call's deadline ({@link TokenwireClient#withTimeout}, which covers every attempt). The wait is
 * the server's {@code google.rpc.RetryInfo} delay when it sent one (a delay above
 * {@link #maxRetryInfoDelay()} is not waited for: the error is thrown); otherwise exponential
 * backoff with "equal jitter": attempt {@code n} waits uniformly between {@code b/2} and {@code b},
 * where {@code b = min(maxBackoff, initialBackoff * multiplier^(n-1))}. Immutable.
 */
public final class RetryPolicy {
  private static final RetryPolicy DEFAULTS = builder().build();
  private static final RetryPolicy DISABLED = builder().maxAttempts(1).build();

  private final int maxAttempts;
  private final Duration initialBackoff;
  private final Duration maxBackoff;
  private final double multiplier;
  private final Duration maxRetryInfoDelay;
  private final Set<Status.Code> retryableCodes;

  private RetryPolicy(Builder b) {
    this.maxAttempts = b.maxAttempts;
    this.initialBackoff = b.initialBackoff;
    this.maxBackoff = b.maxBackoff;
    this.multiplier = b.multiplier;
    this.maxRetryInfoDelay = b.maxRetryInfoDelay;
    this.retryableCodes = Set.copyOf(b.retryableCodes);
  }

  /** 4 attempts, backoff from 200 ms doubling up to 5 s, RetryInfo delays up to 30 s. */
  public static RetryPolicy defaults() {
    return DEFAULTS;
  }

  /** One attempt: no retries. */
  public static RetryPolicy disabled() {
    return DISABLED;
  }

  public static Builder builder() {
    return new Builder();
  }

  public int maxAttempts() {
    return maxAttempts;
  }

  public Duration initialBackoff() {
    return initialBackoff;
  }

  public Duration maxBackoff() {
    return maxBackoff;
  }

  public double multiplier() {
    return multiplier;
  }

  public Duration maxRetryInfoDelay() {
    return maxRetryInfoDelay;
  }

  public Set<Status.Code> retryableCodes() {
    return retryableCodes;
  }

  /** The jittered wait after failed attempt number {@code attempt} (1-based), without RetryInfo. */
  public Duration backoff(int attempt) {
    double ceiling = Math.min(maxBackoff.toNanos(),
        initialBackoff.toNanos() * Math.pow(multiplier, Math.max(0, attempt - 1)));
    double nanos = ceiling <= 0 ? 0 : ThreadLocalRandom.current().nextDouble(ceiling / 2, Math.nextUp(ceiling));
    return Duration.ofNanos((long) Math.min(nanos, ceiling));
  }

  /**
   * How long to wait before attempt {@code attempt + 1} after {@code error} ended attempt
   * {@code attempt} (1-based), or null when {@code error} is final: not retryable, the attempts
   * used up, or a RetryInfo delay above {@link #maxRetryInfoDelay()}.
   */
  public Duration delayBeforeRetry(int attempt, ErrorDetails error) {
    if (!retryableCodes.contains(error.code()) || attempt >= maxAttempts) {
      return null;
    }
    Duration asked = error.retryDelay().orElse(null);
    if (asked != null) {
      if (asked.compareTo(maxRetryInfoDelay) > 0) {
        return null;
      }
      return asked.isNegative() ? Duration.ZERO : asked;
    }
    return backoff(attempt);
  }

  @Override
  public String toString() {
    return "RetryPolicy{maxAttempts=" + maxAttempts + ", initialBackoff=" + initialBackoff + ", maxBackoff="
        + maxBackoff + ", multiplier=" + multiplier + ", maxRetryInfoDelay=" + maxRetryInfoDelay
        + ", retryableCodes=" + retryableCodes + "}";
  }

  /** Builds a {@link RetryPolicy}; starts from the defaults. */
  public static final class Builder {
    private int maxAttempts = 4;
    private Duration initialBackoff = Duration.ofMillis(200);
    private Duration maxBackoff = Duration.ofSeconds(5);
    private double multiplier = 2.0;
    private Duration maxRetryInfoDelay = Duration.ofSeconds(30);
    private Set<Status.Code> retryableCodes = EnumSet.of(Status.Code.UNAVAILABLE, Status.Code.RESOURCE_EXHAUSTED);

    private Builder() {}

    /** Attempts in all, the first included (at least 1; 1 disables retries). */
    public Builder maxAttempts(int maxAttempts) {
      if (maxAttempts < 1) {
        throw new IllegalArgumentException("maxAttempts must be at least 1, not " + maxAttempts);
      }
      this.maxAttempts = maxAttempts;
      return this;
    }

    public Builder initialBackoff(Duration initialBackoff) {
      this.initialBackoff = nonNegative(initialBackoff, "initialBackoff");
      return this;
    }

    public Builder maxBackoff(Duration maxBackoff) {
      this.maxBackoff = nonNegative(maxBackoff, "maxBackoff");
      return this;
    }

    /** The factor between one backoff ceiling and the next (at least 1). */
    public Builder multiplier(double multiplier) {
      if (!(multiplier >= 1) || Double.isInfinite(multiplier)) {
        throw new IllegalArgumentException("multiplier must be at least 1, not " + multiplier);
      }
      this.multiplier = multiplier;
      return this;
    }

    /** The longest RetryInfo delay waited for; a longer one makes the error final. */
    public Builder maxRetryInfoDelay(Duration maxRetryInfoDelay) {
      this.maxRetryInfoDelay = nonNegative(maxRetryInfoDelay, "maxRetryInfoDelay");
      return this;
    }

    public Builder retryableCodes(Set<Status.Code> retryableCodes) {
      this.retryableCodes = EnumSet.noneOf(Status.Code.class);
      this.retryableCodes.addAll(Objects.requireNonNull(retryableCodes, "retryableCodes"));
      return this;
    }

    public RetryPolicy build() {
      return new RetryPolicy(this);
    }

    private static Duration nonNegative(Duration d, String name) {
      if (Objects.requireNonNull(d, name).isNegative()) {
        throw new IllegalArgumentException(name + " must not be negative");
      }
      return d;
    }
  }
}
