package dev.tokenwire.client;

import dev.tokenwire.v1.GenerateRequest;
import dev.tokenwire.v1.GenerateResponse;
import dev.tokenwire.v1.GenerationServiceGrpc;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * One {@code Generate} call running asynchronously ({@link TokenwireClient#generateAsync}): its
 * events go to a {@link StreamObserver} as they arrive, on a gRPC thread. The observer sees
 * {@code onNext} for every event, then exactly one of {@code onCompleted} (after the last
 * sample's {@code finished} event) or {@code onError}: a {@link StatusRuntimeException}, INTERNAL
 * when the server broke the streaming contract (the stream ended before every sample's
 * {@code finished} event, a sample index out of range, ...), CANCELLED after {@link #cancel()}.
 * Retries follow the client's {@link RetryPolicy}, before the first event only; the observer
 * sees nothing of a failed attempt that is retried.
 */
public final class GenerationCall {
  private final GenerationServiceGrpc.GenerationServiceStub stub;
  private final GenerateRequest request;
  private final StreamObserver<GenerationEvent> observer;
  private final TokenwireClient client;
  private final Deadline deadline;
  private final Context.CancellableContext context = Context.current().withCancellation();
  private final Accumulator accumulator;
  private final CompletableFuture<List<GenerationResult>> samples = new CompletableFuture<>();
  private int attempts; // guarded by this
  private boolean received; // guarded by this
  private boolean done; // guarded by this
  private boolean waiting; // between attempts; guarded by this

  GenerationCall(GenerationServiceGrpc.GenerationServiceStub stub, GenerateRequest request,
      StreamObserver<GenerationEvent> observer, TokenwireClient client, Deadline deadline) {
    this.stub = stub;
    this.request = request;
    this.observer = observer;
    this.client = client;
    this.deadline = deadline;
    this.accumulator = new Accumulator("", Accumulator.samples(request));
  }

  void start() {
    synchronized (this) {
      attempts++;
    }
    Context previous = context.attach();
    try {
      stub.generate(request, new Attempt());
    } finally {
      context.detach(previous);
    }
  }

  /** The number of samples the request asked for ({@code n}; 1 when absent or 0). */
  public long sampleCount() {
    return accumulator.samples();
  }

  /**
   * Completes with one result per sample, in sample-index order, when the generation ends, or
   * exceptionally with the error the observer got. Cancelling this future does not cancel the
   * call: use {@link #cancel()}.
   */
  public CompletableFuture<List<GenerationResult>> samples() {
    return samples;
  }

  /**
   * How many calls this generation has started so far: 1, plus one per retry (the observer sees
   * nothing of the retried ones). Final once {@link #isDone()}.
   */
  public synchronized int attempts() {
    return attempts;
  }

  /** Whether the call has ended (the observer has had onCompleted or onError). */
  public synchronized boolean isDone() {
    return done;
  }

  /** Cancels the call (and so the generation) if it has not ended; the observer gets CANCELLED. */
  public void cancel() {
    context.cancel(null);
    synchronized (this) {
      if (waiting) { // no attempt in flight to report the cancellation: report it now
        fail(Status.CANCELLED.withDescription("cancelled while waiting to retry").asRuntimeException());
      }
    }
  }

  private synchronized void fail(Throwable error) {
    if (done) {
      return;
    }
    done = true;
    context.cancel(null);
    samples.completeExceptionally(error);
    observer.onError(error);
  }

  private final class Attempt implements StreamObserver<GenerateResponse> {
    @Override
    public void onNext(GenerateResponse response) {
      synchronized (GenerationCall.this) {
        if (done) {
          return;
        }
        received = true;
        GenerationEvent event;
        List<GenerationResult> results;
        try {
          event = GenerationEvent.of(response);
          results = accumulator.add(event);
        } catch (StatusRuntimeException e) {
          fail(e);
          return;
        } catch (IllegalArgumentException e) {
          fail(Status.INTERNAL.withDescription("the server sent " + e.getMessage()).asRuntimeException());
          return;
        }
        observer.onNext(event);
        if (results != null) {
          done = true;
          context.cancel(null); // the server ends the call too; this frees it at once
          samples.complete(results);
          observer.onCompleted();
        }
      }
    }

    @Override
    public void onError(Throwable error) {
      Duration delay;
      synchronized (GenerationCall.this) {
        if (done) {
          return;
        }
        delay = received || context.isCancelled() ? null : client.retryDelay(attempts, error, deadline);
        if (delay == null) {
          fail(error);
          return;
        }
        waiting = true;
      }
      CompletableFuture.delayedExecutor(delay.toNanos(), TimeUnit.NANOSECONDS).execute(() -> {
        synchronized (GenerationCall.this) {
          waiting = false;
          if (done) {
            return; // cancelled while waiting
          }
        }
        start();
      });
    }

    @Override
    public void onCompleted() {
      synchronized (GenerationCall.this) {
        if (!done) {
          fail(accumulator.truncated("Generate"));
        }
      }
    }
  }
}
