package dev.tokenwire.client;

import dev.tokenwire.v1.GenerateResponse;
import io.grpc.Context;
import io.grpc.StatusRuntimeException;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.function.Consumer;

/**
 * The events of one {@code Generate} call, read with a blocking iterator. Closing the stream (or
 * {@link #cancel()}) before its {@code finished} event cancels the call, which cancels the
 * generation on the server and frees its slot. Reading throws {@link StatusRuntimeException} when
 * the call fails (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ...).
 */
public final class GenerationStream implements Iterator<GenerationEvent>, Iterable<GenerationEvent>, AutoCloseable {
  private final Context.CancellableContext context;
  private final Iterator<GenerateResponse> responses;
  private boolean finished;

  GenerationStream(Context.CancellableContext context, Iterator<GenerateResponse> responses) {
    this.context = context;
    this.responses = responses;
  }

  @Override
  public boolean hasNext() {
    return !finished && responses.hasNext();
  }

  @Override
  public GenerationEvent next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the generation has ended");
    }
    GenerationEvent event = GenerationEvent.of(responses.next());
    if (event.isFinal()) {
      finished = true;
      context.close();
    }
    return event;
  }

  @Override
  public Iterator<GenerationEvent> iterator() {
    return this;
  }

  /**
   * Reads the rest of the stream, handing each non-empty delta's text to {@code onText}, and
   * returns the result.
   */
  public GenerationResult collect(Consumer<String> onText) {
    Accumulator accumulator = new Accumulator("");
    try {
      while (hasNext()) {
        GenerationEvent event = next();
        if (event instanceof GenerationEvent.Delta delta && !delta.text().isEmpty()) {
          onText.accept(delta.text());
        }
        GenerationResult result = accumulator.add(event);
        if (result != null) {
          return result;
        }
      }
    } finally {
      close();
    }
    throw new IllegalStateException("the Generate stream ended without a finished event");
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
