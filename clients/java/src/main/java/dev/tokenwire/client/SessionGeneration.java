package dev.tokenwire.client;

import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One generation running on a {@link Session}. Its events can be read one by one ({@link #take()},
 * {@link #poll(Duration)}) and/or awaited as a whole ({@link #result()}); both see every event.
 */
public final class SessionGeneration {
  private final Session session;
  private final String requestId;
  private final BlockingQueue<GenerationEvent> events = new LinkedBlockingQueue<>();
  private final CompletableFuture<GenerationResult> result = new CompletableFuture<>();
  private final Accumulator accumulator;
  private boolean ended; // guarded by this
  private volatile boolean finalTaken;

  SessionGeneration(Session session, String requestId) {
    this.session = session;
    this.requestId = requestId;
    this.accumulator = new Accumulator(requestId);
  }

  public String requestId() {
    return requestId;
  }

  /**
   * Completes with the result when the generation finishes (cancelled ones included: reason
   * FINISH_REASON_CANCELLED), or exceptionally with a {@link StatusRuntimeException} when it fails.
   */
  public CompletableFuture<GenerationResult> result() {
    return result;
  }

  /** Whether the generation has ended (its final event has arrived). */
  public boolean isDone() {
    return result.isDone();
  }

  /**
   * The next event, waiting for it.
   *
   * @throws IllegalStateException if the final event was already taken
   */
  public GenerationEvent take() throws InterruptedException {
    if (finalTaken && events.isEmpty()) {
      throw new IllegalStateException("generation " + requestId + " has ended");
    }
    return record(events.take());
  }

  /** The next event, or null if none arrives within {@code timeout} or the final one was taken. */
  public GenerationEvent poll(Duration timeout) throws InterruptedException {
    if (finalTaken && events.isEmpty()) {
      return null;
    }
    return record(events.poll(timeout.toNanos(), TimeUnit.NANOSECONDS));
  }

  /**
   * Cancels the generation: it ends with a {@code finished} event whose reason is
   * FINISH_REASON_CANCELLED. Does nothing once it has ended.
   */
  public void cancel() {
    if (!isDone()) {
      session.cancel(requestId);
    }
  }

  private GenerationEvent record(GenerationEvent event) {
    if (event != null && event.isFinal()) {
      finalTaken = true;
    }
    return event;
  }

  /** Called in order from the Session's response thread (or once on stream failure). */
  synchronized void deliver(GenerationEvent event) {
    if (ended) {
      return;
    }
    events.add(event);
    try {
      GenerationResult done = accumulator.add(event);
      if (done != null) {
        ended = true;
        result.complete(done);
      }
    } catch (StatusRuntimeException e) {
      ended = true;
      result.completeExceptionally(e);
    }
  }
}
