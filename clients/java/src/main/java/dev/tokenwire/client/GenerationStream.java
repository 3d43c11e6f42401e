package dev.tokenwire.client;

import dev.tokenwire.v1.GenerateResponse;
import io.grpc.Context;
import io.grpc.StatusRuntimeException;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.function.Consumer;
import java.util.function.ObjIntConsumer;

/**
 * The events of one {@code Generate} call, read with a blocking iterator. The stream ends after
 * the {@code finished} event of its last sample: one {@code finished} when the request's {@code n}
 * is absent or 1, {@code n} of them (one per sample, in the order the samples end) otherwise.
 * Closing the stream (or {@link #cancel()}) before then cancels the call, which cancels the
 * generation on the server and frees its slot. Reading throws {@link StatusRuntimeException} when
 * the call fails (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ...), or INTERNAL when
 * the server breaks the streaming contract (a sample index out of range, a sample finished twice).
 *
 * <p>Every event read, by iterating or by {@link #collect} / {@link #collectSamples}, counts
 * towards the result those return: read the {@code Started} event first if you want it, then
 * collect the rest.
 */
public final class GenerationStream implements Iterator<GenerationEvent>, Iterable<GenerationEvent>, AutoCloseable {
  private final Context.CancellableContext context;
  private final Iterator<GenerateResponse> responses;
  private final Accumulator accumulator;
  private boolean ended;

  GenerationStream(Context.CancellableContext context, Iterator<GenerateResponse> responses, long samples) {
    this.context = context;
    this.responses = responses;
    this.accumulator = new Accumulator("", samples);
  }

  /** The number of samples the request asked for ({@code n}; 1 when absent or 0). */
  public long samples() {
    return accumulator.samples();
  }

  @Override
  public boolean hasNext() {
    return !ended && responses.hasNext();
  }

  @Override
  public GenerationEvent next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the generation has ended");
    }
    GenerationEvent event = GenerationEvent.of(responses.next());
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
   *     {@link #collectSamples}; the call is cancelled), or when the stream ended without its
   *     finished event
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
   * @throws IllegalStateException when the stream ended before every sample's finished event
   */
  public List<GenerationResult> collectSamples(ObjIntConsumer<String> onText) {
    try {
      while (hasNext()) {
        GenerationEvent event = next();
        if (event instanceof GenerationEvent.Delta delta && !delta.text().isEmpty()) {
          onText.accept(delta.text(), delta.sampleIndex());
        }
      }
      List<GenerationResult> results = accumulator.results();
      if (results == null) {
        throw new IllegalStateException(samples() == 1
            ? "the Generate stream ended without a finished event"
            : "the Generate stream ended after " + accumulator.finishedCount() + " finished events of "
                + samples() + " samples");
      }
      return results;
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
