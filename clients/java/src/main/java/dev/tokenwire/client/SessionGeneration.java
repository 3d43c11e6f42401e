package dev.tokenwire.client;

import dev.tokenwire.v1.GenerateRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One generation running on a {@link Session}. Its events can be read one by one ({@link #take()},
 * {@link #poll(Duration)}) and/or awaited as a whole ({@link #result()}, or {@link #samples()} for
 * a request with {@code n} > 1); both see every event. The generation ends with its last
 * sample's {@code finished} event (the only one when {@code n} is 1) or with a {@code Failed}.
 */
public final class SessionGeneration implements Iterable<GenerationEvent> {
  private final Session session;
  private final String requestId;
  private final BlockingQueue<GenerationEvent> events = new LinkedBlockingQueue<>();
  private final CompletableFuture<List<GenerationResult>> samples = new CompletableFuture<>();
  private final CompletableFuture<GenerationResult> result; // null when n > 1
  private final Accumulator accumulator;
  private boolean ended; // guarded by this
  private volatile GenerationEvent lastEvent; // the event that ended the generation, once it has
  private volatile boolean lastTaken;
  private final GenerateRequest request;
  private volatile boolean received; // an event other than a retried error has arrived
  private volatile boolean cancelRequested;
  private int attempts = 1; // starts sent; guarded by this

  SessionGeneration(Session session, GenerateRequest request, long samples) {
    this.session = session;
    this.request = request;
    this.requestId = request.getRequestId();
    this.accumulator = new Accumulator(requestId, samples);
    this.result = samples == 1 ? new CompletableFuture<>() : null;
  }

  public String requestId() {
    return requestId;
  }

  /** The number of samples the request asked for ({@code n}; 1 when absent or 0). */
  public long sampleCount() {
    return accumulator.samples();
  }

  /**
   * Completes with the result when the generation finishes (cancelled ones included: reason
   * FINISH_REASON_CANCELLED), or exceptionally with a {@link StatusRuntimeException} when it fails.
   * For a request with one sample only.
   *
   * @throws IllegalStateException when the request asked for {@code n} > 1 samples: use
   *     {@link #samples()}
   */
  public CompletableFuture<GenerationResult> result() {
    if (result == null) {
      throw new IllegalStateException("generation " + requestId + " asks for n = " + sampleCount()
          + " samples: use samples(), one result per sample");
    }
    return result;
  }

  /**
   * Completes with one result per sample, in sample-index order, when the last sample finishes
   * (a list of one when {@code n} is 1), or exceptionally with a {@link StatusRuntimeException}
   * when the generation fails.
   */
  public CompletableFuture<List<GenerationResult>> samples() {
    return samples;
  }

  /** Whether the generation has ended (its last event has arrived). */
  public boolean isDone() {
    return samples.isDone();
  }

  /**
   * The next event, waiting for it.
   *
   * @throws IllegalStateException if the generation's last event was already taken
   */
  public GenerationEvent take() throws InterruptedException {
    if (lastTaken && events.isEmpty()) {
      throw new IllegalStateException("generation " + requestId + " has ended");
    }
    return record(events.take());
  }

  /** The next event, or null if none arrives within {@code timeout} or the last one was taken. */
  public GenerationEvent poll(Duration timeout) throws InterruptedException {
    if (lastTaken && events.isEmpty()) {
      return null;
    }
    return record(events.poll(timeout.toNanos(), TimeUnit.NANOSECONDS));
  }

  /**
   * The generation's events as a blocking iterator, like {@link GenerationStream}: it ends after
   * the last sample's {@code finished} event, and throws the {@link StatusRuntimeException} of a
   * failed generation (a Session {@code error}, or the stream failing) instead of returning its
   * {@code Failed} event. It shares the queue with {@link #take()}: each event is read once.
   * When the waiting thread is interrupted, {@code next()} throws CANCELLED (the thread's
   * interrupt flag stays set).
   */
  @Override
  public Iterator<GenerationEvent> iterator() {
    return new Iterator<>() {
      @Override
      public boolean hasNext() {
        return !(lastTaken && events.isEmpty());
      }

      @Override
      public GenerationEvent next() {
        if (!hasNext()) {
          throw new NoSuchElementException("generation " + requestId + " has ended");
        }
        GenerationEvent event;
        try {
          event = take();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw Status.CANCELLED.withDescription("interrupted while waiting for an event of generation " + requestId)
              .withCause(e).asRuntimeException();
        }
        if (event instanceof GenerationEvent.Failed failed) {
          throw Accumulator.failure(failed);
        }
        return event;
      }
    };
  }

  /**
   * Cancels the generation: each sample still running ends with a {@code finished} event whose
   * reason is FINISH_REASON_CANCELLED. Does nothing once it has ended.
   */
  public void cancel() {
    cancelRequested = true;
    if (!isDone()) {
      session.cancel(requestId);
    }
  }

  /** How many times its start has been sent (more than 1 after retries). */
  public synchronized int attempts() {
    return attempts;
  }

  GenerateRequest request() {
    return request;
  }

  /** Whether a failure now may be retried: nothing received yet and no cancel asked for. */
  boolean retryable() {
    return !received && !cancelRequested;
  }

  synchronized int nextAttempt() {
    return ++attempts;
  }

  private GenerationEvent record(GenerationEvent event) {
    if (event != null && event == lastEvent) {
      lastTaken = true;
    }
    return event;
  }

  /**
   * Called in order from the Session's response thread (or once on stream failure). Returns
   * whether the generation has ended with this event.
   */
  synchronized boolean deliver(GenerationEvent event) {
    if (ended) {
      return true;
    }
    received = true;
    List<GenerationResult> done;
    try {
      done = accumulator.add(event);
    } catch (StatusRuntimeException e) {
      end(event);
      if (result != null) {
        result.completeExceptionally(e);
      }
      samples.completeExceptionally(e);
      return true;
    }
    if (done == null) {
      events.add(event);
      return false;
    }
    end(event);
    if (result != null) {
      result.complete(done.get(0));
    }
    samples.complete(done);
    return true;
  }

  private void end(GenerationEvent event) {
    ended = true;
    lastEvent = event; // before it is queued, so that record() recognises it
    events.add(event);
  }
}
