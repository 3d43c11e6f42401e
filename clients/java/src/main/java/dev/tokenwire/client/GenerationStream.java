package dev.tokenwire.client;

import dev.tokenwire.v1.GenerateResponse;
import io.grpc.Context;
import io.grpc.StatusRuntimeException;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.function.Consumer;
import java.util.function.ObjIntConsumer;
import java.util.function.Supplier;

/**
 * The events of one {@code Generate} call, read with a blocking iterator. The stream ends after
 * the {@code finished} event of its last sample: one {@code finished} when the request's {@code n}
 * is absent or 1, {@code n} of them (one per sample, in the order the samples end) otherwise.
 * Closing the stream (or {@link #cancel()}) before then cancels the call, which cancels the
 * generation on the server and frees its slot. Reading throws {@link StatusRuntimeException} when
 * the call fails (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ...), or INTERNAL when
 * the server breaks the streaming contract (the stream ends before every sample's {@code finished}
 * event, a sample index out of range, a sample finished twice): iterating never ends silently
 * short of the end.
 *
 * <p>A call that fails with a retryable code (UNAVAILABLE, RESOURCE_EXHAUSTED) before its first
 * event is started again per the client's {@link RetryPolicy}, inside {@code hasNext()}; once an
 * event has been read, nothing is retried. {@link #attempts()} counts the calls started.
 *
 * <p>Every event read, by iterating or by {@link #collect} / {@link #collectSamples}, counts
 * towards the result those return: read the {@code Started} event first if you want it, then
 * collect the rest.
 */
public final class GenerationStream implements Iterator<GenerationEvent>, Iterable<GenerationEvent>, AutoCloseable {
  /** Decides whether a failed attempt is retried (and waits first): true to start another. */
  interface Retrier {
    boolean retry(int attempt, StatusRuntimeException error);
  }

  private final Context.CancellableContext context;
  private final Supplier<Iterator<GenerateResponse>> start;
  private final Retrier retrier;
  private final Accumulator accumulator;
  private Iterator<GenerateResponse> responses;
  private int attempts = 1;
  private boolean received;
  private boolean ended;

  GenerationStream(Context.CancellableContext context, Supplier<Iterator<GenerateResponse>> start, Retrier retrier,
      long samples) {
    this.context = context;
    this.start = start;
    this.retrier = retrier;
    this.accumulator = new Accumulator("", samples);
    this.responses = start.get();
  }

  /** The number of samples the request asked for ({@code n}; 1 when absent or 0). */
  public long samples() {
    return accumulator.samples();
  }

  /**
   * How many calls this stream has started so far: 1, plus one per retry (a retry starts inside
   * {@code hasNext()}, so read this after the stream has ended, or after its first event, to
   * count them all). Never more than the retry policy's {@link RetryPolicy#maxAttempts()}.
   */
  public int attempts() {
    return attempts;
  }

  /**
   * Whether another event follows, waiting for it.
   *
   * @throws StatusRuntimeException when the call fails, or INTERNAL when the stream ends before
   *     every sample's {@code finished} event (the server broke the streaming contract); after
   *     that, false
   */
  @Override
  public boolean hasNext() {
    if (ended) {
      return false;
    }
    boolean more;
    while (true) {
      try {
        more = responses.hasNext();
        break;
      } catch (StatusRuntimeException e) {
        // Retried only before the first event: nothing is replayed.
        if (!received && !context.isCancelled() && retrier.retry(attempts, e)) {
          attempts++;
          responses = start.get();
          continue;
        }
        end();
        throw e;
      } catch (RuntimeException e) {
        end();
        throw e;
      }
    }
    if (!more) {
      end();
      throw accumulator.truncated("Generate");
    }
    return true;
  }

  @Override
  public GenerationEvent next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the generation has ended");
    }
    GenerationEvent event = GenerationEvent.of(responses.next());
    received = true;
    try {
      if (accumulator.add(event) != null) {
        end();
      }
    } catch (StatusRuntimeException e) {
      end();
      throw e;
    }
    return event;
  }

  private void end() {
    ended = true;
    context.close();
  }

  @Override
  public Iterator<GenerationEvent> iterator() {
    return this;
  }

  /**
   * Reads the rest of the stream, handing each non-empty delta's text to {@code onText}, and
   * returns the result of the whole generation (the events already read included). For a
   * request with one sample only.
   *
   * @throws IllegalStateException when the request asked for {@code n} > 1 samples (use
   *     {@link #collectSamples}; the call is cancelled)
   * @throws StatusRuntimeException when the call fails, or INTERNAL when the stream ended without
   *     its finished event
   */
  public GenerationResult collect(Consumer<String> onText) {
    if (samples() != 1) {
      close();
      throw new IllegalStateException("the request asks for n = " + samples()
          + " samples: collect them with collectSamples, one result per sample");
    }
    return collectSamples((text, sampleIndex) -> onText.accept(text)).get(0);
  }

  /**
   * Reads the rest of the stream, handing each non-empty delta's text and sample index to
   * {@code onText} (interleaved as they arrive), and returns one result per sample, in
   * sample-index order: element {@code i} is sample {@code i}. Works for any {@code n}, 1
   * included.
   *
   * @throws StatusRuntimeException when the call fails, or INTERNAL when the stream ended before
   *     every sample's finished event
   */
  public List<GenerationResult> collectSamples(ObjIntConsumer<String> onText) {
    try {
      while (hasNext()) {
        GenerationEvent event = next();
        if (event instanceof GenerationEvent.Delta delta && !delta.text().isEmpty()) {
          onText.accept(delta.text(), delta.sampleIndex());
        }
      }
      return accumulator.results(); // hasNext() threw if the stream ended early
    } finally {
      close();
    }
  }

  /** Cancels the call (and so the generation) if it has not ended. */
  public void cancel() {
    context.cancel(null);
  }

  @Override
  public void close() {
    cancel();
  }
}
