package dev.tokenwire.client;

import dev.tokenwire.v1.GenerateRequest;
import dev.tokenwire.v1.GenerationServiceGrpc;
import dev.tokenwire.v1.SessionCancel;
import dev.tokenwire.v1.SessionRequest;
import dev.tokenwire.v1.SessionResponse;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BiFunction;
import java.util.function.Consumer;

/**
 * Many generations multiplexed on one bidirectional {@code Session} stream. Thread-safe.
 *
 * <p>{@link #start} sends a generation and returns its handle; every response is routed to the
 * handle of its {@code request_id}. A generation with {@code n} > 1 samples stays in flight until
 * each of its samples has had its {@code finished} event. {@link #halfClose()} means "no more requests": generations in
 * flight run to completion, then the stream ends. {@link #close()} cancels the whole stream (and
 * so every generation still on it).
 */
public final class Session implements AutoCloseable {
  private final Map<String, SessionGeneration> inFlight = new ConcurrentHashMap<>();
  private final CompletableFuture<Void> terminated = new CompletableFuture<>();
  private final Consumer<String> abort;
  private final BiFunction<Integer, Throwable, Duration> retryDelay;
  /** Generations waiting to be sent again, with the error that ends them if they are not. */
  private final Map<String, GenerationEvent.Failed> waiting = new ConcurrentHashMap<>();
  private final Object sendLock = new Object();
  private ClientCallStreamObserver<SessionRequest> requests; // guarded by sendLock
  private boolean halfClosed; // guarded by sendLock
  private volatile com.google.rpc.Status ended; // with its details (BadRequest, RetryInfo, ...)

  Session(GenerationServiceGrpc.GenerationServiceStub stub, Consumer<String> abort,
      BiFunction<Integer, Throwable, Duration> retryDelay) {
    this.abort = abort;
    this.retryDelay = retryDelay;
    synchronized (sendLock) {
      stub.session(new Responses());
    }
  }

  /**
   * Starts a generation. Its {@code request_id} is required and must not be in flight on this
   * session already.
   *
   * @throws IllegalArgumentException for a missing or duplicate request id
   * @throws IllegalStateException after {@link #halfClose()} or {@link #close()}
   */
  public SessionGeneration start(GenerateRequest request) {
    String id = request.getRequestId();
    if (id.isEmpty()) {
      throw new IllegalArgumentException("a Session generation needs a request_id");
    }
    SessionGeneration generation = new SessionGeneration(this, request, Accumulator.samples(request));
    synchronized (sendLock) {
      if (halfClosed) {
        throw new IllegalStateException("the session no longer takes requests");
      }
      if (inFlight.putIfAbsent(id, generation) != null) {
        throw new IllegalArgumentException("request_id " + id + " is already in flight on this session");
      }
      requests.onNext(SessionRequest.newBuilder().setStart(request).build());
    }
    com.google.rpc.Status status = ended;
    if (status != null) {
      fail(generation, status);
    }
    return generation;
  }

  /**
   * Cancels the generation with this id (unknown or finished ids are ignored). After
   * {@link #halfClose()} the cancel goes through the Abort RPC instead.
   */
  public void cancel(String requestId) {
    GenerationEvent.Failed pending = waiting.remove(requestId);
    if (pending != null) { // waiting to be sent again: it ends now, with its error
      endWith(requestId, pending);
      return;
    }
    synchronized (sendLock) {
      if (!halfClosed) {
        requests.onNext(SessionRequest.newBuilder()
            .setCancel(SessionCancel.newBuilder().setRequestId(requestId))
            .build());
        return;
      }
    }
    abort.accept(requestId);
  }

  /** No more requests: generations in flight run to completion, then the stream ends. */
  public void halfClose() {
    synchronized (sendLock) {
      if (!halfClosed) {
        halfClosed = true;
        requests.onCompleted();
      }
    }
    // Generations waiting to be sent again cannot be: they end with their error.
    for (String id : List.copyOf(waiting.keySet())) {
      GenerationEvent.Failed pending = waiting.remove(id);
      if (pending != null) {
        endWith(id, pending);
      }
    }
  }

  /** Waits for the stream to end; returns false on timeout. */
  public boolean awaitTermination(Duration timeout) throws InterruptedException {
    try {
      terminated.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (ExecutionException e) {
      // The stream failed; each generation has its error.
    } catch (TimeoutException e) {
      return false;
    }
    return true;
  }

  /** Completes when the stream ends: normally after a half-close, exceptionally when it fails. */
  public CompletableFuture<Void> termination() {
    return terminated;
  }

  /** Cancels the stream if it is still running, which cancels every generation on it. */
  @Override
  public void close() {
    synchronized (sendLock) {
      halfClosed = true;
      if (!terminated.isDone()) {
        requests.cancel("session closed by the client", null);
      }
    }
  }

  private void endAll(com.google.rpc.Status status) {
    ended = status;
    // Those waiting to be sent again end with their own error.
    for (String id : List.copyOf(waiting.keySet())) {
      GenerationEvent.Failed pending = waiting.remove(id);
      if (pending != null) {
        endWith(id, pending);
      }
    }
    for (SessionGeneration generation : List.copyOf(inFlight.values())) {
      fail(generation, status);
    }
  }

  private void endWith(String requestId, GenerationEvent event) {
    SessionGeneration generation = inFlight.get(requestId);
    if (generation != null && generation.deliver(event)) {
      inFlight.remove(requestId, generation);
    }
  }

  /**
   * Schedules sending {@code generation}'s start again after {@code failed} (a retryable error
   * before any of its events) and returns true, or returns false when the error is final.
   */
  private boolean retryLater(SessionGeneration generation, GenerationEvent.Failed failed) {
    if (!generation.retryable()) {
      return false;
    }
    Duration delay = retryDelay.apply(generation.attempts(), Accumulator.failure(failed));
    if (delay == null) {
      return false;
    }
    String id = generation.requestId();
    waiting.put(id, failed);
    CompletableFuture.delayedExecutor(delay.toNanos(), TimeUnit.NANOSECONDS).execute(() -> {
      GenerationEvent.Failed pending = waiting.remove(id);
      if (pending == null) {
        return; // cancelled, half-closed or the stream ended meanwhile
      }
      synchronized (sendLock) {
        if (!halfClosed && !terminated.isDone() && generation.retryable() && inFlight.get(id) == generation) {
          generation.nextAttempt();
          requests.onNext(SessionRequest.newBuilder().setStart(generation.request()).build());
          return;
        }
      }
      endWith(id, pending);
    });
    return true;
  }

  private void fail(SessionGeneration generation, com.google.rpc.Status status) {
    inFlight.remove(generation.requestId(), generation);
    generation.deliver(new GenerationEvent.Failed(generation.requestId(), status));
  }

  /** The stream's error as a google.rpc.Status, its details (BadRequest, RetryInfo, ...) kept. */
  static com.google.rpc.Status statusOf(Throwable error) {
    com.google.rpc.Status full = StatusProto.fromThrowable(error);
    if (full != null) {
      return full;
    }
    return statusOf(Status.fromThrowable(error));
  }

  private static com.google.rpc.Status statusOf(Status status) {
    return com.google.rpc.Status.newBuilder()
        .setCode(status.getCode().value())
        .setMessage(status.getDescription() == null ? status.getCode().name() : status.getDescription())
        .build();
  }

  private final class Responses implements ClientResponseObserver<SessionRequest, SessionResponse> {
    @Override
    public void beforeStart(ClientCallStreamObserver<SessionRequest> requestStream) {
      requests = requestStream; // under sendLock: called from stub.session in the constructor
    }

    @Override
    public void onNext(SessionResponse response) {
      GenerationEvent event = GenerationEvent.of(response);
      SessionGeneration generation = inFlight.get(event.requestId());
      if (generation == null) {
        return; // ended already (for example failed with the stream)
      }
      if (event instanceof GenerationEvent.Failed failed && retryLater(generation, failed)) {
        return;
      }
      if (generation.deliver(event)) { // its last event: the last sample's finished, or an error
        inFlight.remove(event.requestId(), generation);
      }
    }

    @Override
    public void onError(Throwable error) {
      endAll(statusOf(error));
      terminated.completeExceptionally(error);
    }

    @Override
    public void onCompleted() {
      endAll(statusOf(Status.INTERNAL.withDescription("the Session stream ended before this generation's final event")));
      terminated.complete(null);
    }
  }
}
