package dev.tokenwire.client;

import dev.tokenwire.v1.GenerateRequest;
import dev.tokenwire.v1.GenerationServiceGrpc;
import dev.tokenwire.v1.SessionCancel;
import dev.tokenwire.v1.SessionRequest;
import dev.tokenwire.v1.SessionResponse;
import io.grpc.Status;
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
  private final Object sendLock = new Object();
  private ClientCallStreamObserver<SessionRequest> requests; // guarded by sendLock
  private boolean halfClosed; // guarded by sendLock
  private volatile Status ended;

  Session(GenerationServiceGrpc.GenerationServiceStub stub, Consumer<String> abort) {
    this.abort = abort;
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
    SessionGeneration generation = new SessionGeneration(this, id, Accumulator.samples(request));
    synchronized (sendLock) {
      if (halfClosed) {
        throw new IllegalStateException("the session no longer takes requests");
      }
      if (inFlight.putIfAbsent(id, generation) != null) {
        throw new IllegalArgumentException("request_id " + id + " is already in flight on this session");
      }
      requests.onNext(SessionRequest.newBuilder().setStart(request).build());
    }
    Status status = ended;
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

  private void endAll(Status status) {
    ended = status;
    for (SessionGeneration generation : List.copyOf(inFlight.values())) {
      fail(generation, status);
    }
  }

  private void fail(SessionGeneration generation, Status status) {
    inFlight.remove(generation.requestId(), generation);
    generation.deliver(new GenerationEvent.Failed(generation.requestId(), com.google.rpc.Status.newBuilder()
        .setCode(status.getCode().value())
        .setMessage(status.getDescription() == null ? status.getCode().name() : status.getDescription())
        .build()));
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
      if (generation.deliver(event)) { // its last event: the last sample's finished, or an error
        inFlight.remove(event.requestId(), generation);
      }
    }

    @Override
    public void onError(Throwable error) {
      endAll(Status.fromThrowable(error));
      terminated.completeExceptionally(error);
    }

    @Override
    public void onCompleted() {
      endAll(Status.INTERNAL.withDescription("the Session stream ended before this generation's final event"));
      terminated.complete(null);
    }
  }
}
