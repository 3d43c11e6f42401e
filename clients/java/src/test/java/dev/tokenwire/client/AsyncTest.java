package dev.tokenwire.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.rpc.Code;
import com.google.rpc.RetryInfo;
import dev.tokenwire.v1.FinishReason;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The asynchronous Generate API and the Session generation iterator. */
class AsyncTest {
  private final FakeGenerationService service = new FakeGenerationService();
  private Server server;
  private ManagedChannel channel;
  private TokenwireClient client;

  @BeforeEach
  void setUp() throws Exception {
    String name = InProcessServerBuilder.generateName();
    server = InProcessServerBuilder.forName(name).directExecutor().addService(service).build().start();
    channel = InProcessChannelBuilder.forName(name).build();
    client = TokenwireClient.of(channel).withTimeout(Duration.ofSeconds(10));
  }

  @AfterEach
  void tearDown() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  /** Records what a StreamObserver sees. */
  private static final class Recorder implements StreamObserver<GenerationEvent> {
    final List<GenerationEvent> events = new CopyOnWriteArrayList<>();
    final AtomicReference<Throwable> error = new AtomicReference<>();
    final CountDownLatch ended = new CountDownLatch(1);
    volatile boolean completed;

    @Override
    public void onNext(GenerationEvent event) {
      events.add(event);
    }

    @Override
    public void onError(Throwable t) {
      error.set(t);
      ended.countDown();
    }

    @Override
    public void onCompleted() {
      completed = true;
      ended.countDown();
    }

    void await() throws InterruptedException {
      assertTrue(ended.await(10, TimeUnit.SECONDS), "the observer was never ended");
    }
  }

  @Test
  void generateAsyncStreamsEveryEventThenCompletes() throws Exception {
    Recorder recorder = new Recorder();
    GenerationCall call = client.generateAsync(Requests.text("hi").build(), recorder);
    recorder.await();
    assertTrue(recorder.completed);
    assertNull(recorder.error.get());
    assertEquals(4, recorder.events.size());
    assertInstanceOf(GenerationEvent.Started.class, recorder.events.get(0));
    assertTrue(recorder.events.get(3).isFinal());
    assertTrue(call.isDone());
    assertEquals("Hello world", call.samples().get(10, TimeUnit.SECONDS).get(0).text());
  }

  @Test
  void generateAsyncReportsATruncatedStream() throws Exception {
    Recorder recorder = new Recorder();
    client.generateAsync(Requests.text("truncated").build(), recorder);
    recorder.await();
    assertFalse(recorder.completed);
    StatusRuntimeException error = assertInstanceOf(StatusRuntimeException.class, recorder.error.get());
    assertEquals(Status.Code.INTERNAL, error.getStatus().getCode());
  }

  @Test
  void generateAsyncRetriesBeforeTheFirstEvent() throws Exception {
    service.failuresLeft.set(1);
    service.failure = com.google.rpc.Status.newBuilder().setCode(Code.UNAVAILABLE_VALUE).setMessage("later")
        .addDetails(Any.pack(RetryInfo.newBuilder()
            .setRetryDelay(com.google.protobuf.Duration.newBuilder().setNanos(10_000_000)).build()))
        .build();
    Recorder recorder = new Recorder();
    GenerationCall call = client.generateAsync(Requests.text("hi").build(), recorder);
    recorder.await();
    assertTrue(recorder.completed, String.valueOf(recorder.error.get()));
    assertEquals(2, service.requests.size());
    assertEquals(2, call.attempts());
    assertEquals(4, recorder.events.size());
  }

  @Test
  void generateAsyncDoesNotRetryAfterTheFirstEvent() throws Exception {
    Recorder recorder = new Recorder();
    GenerationCall call = client.generateAsync(Requests.text("fail-after-start").build(), recorder);
    recorder.await();
    assertEquals(Status.Code.UNAVAILABLE, Status.fromThrowable(recorder.error.get()).getCode());
    assertEquals(1, recorder.events.size());
    assertEquals(1, service.requests.size());
    assertEquals(1, call.attempts());
  }

  @Test
  void completeAsyncGivesTheResult() throws Exception {
    GenerationResult result = client.completeAsync(Requests.text("hi").build()).get(10, TimeUnit.SECONDS);
    assertEquals("Hello world", result.text());
    assertEquals(FinishReason.FINISH_REASON_LENGTH, result.reason());
    List<GenerationResult> samples = client.completeSamplesAsync(Requests.text("hi").setN(3)
        .setSampling(Requests.sampling(1f, 7)).build()).get(10, TimeUnit.SECONDS);
    assertEquals(3, samples.size());
    assertEquals("s2.0s2.1", samples.get(2).text());
    assertThrows(IllegalArgumentException.class, () -> client.completeAsync(Requests.text("hi").setN(2).build()));
  }

  @Test
  void completeAsyncFailsWithTheStatus() {
    service.failuresLeft.set(1);
    service.failure = com.google.rpc.Status.newBuilder().setCode(Code.INVALID_ARGUMENT_VALUE).setMessage("no").build();
    CompletableFuture<GenerationResult> future = client.completeAsync(Requests.text("hi").build());
    ExecutionException error = assertThrows(ExecutionException.class, () -> future.get(10, TimeUnit.SECONDS));
    assertEquals(Status.Code.INVALID_ARGUMENT, ErrorDetails.of(error).code());
  }

  @Test
  void cancellingACallEndsItWithCancelled() throws Exception {
    service.failuresLeft.set(1);
    service.failure = com.google.rpc.Status.newBuilder().setCode(Code.UNAVAILABLE_VALUE).setMessage("later")
        .addDetails(Any.pack(RetryInfo.newBuilder()
            .setRetryDelay(com.google.protobuf.Duration.newBuilder().setSeconds(2)).build()))
        .build();
    Recorder recorder = new Recorder();
    GenerationCall call = client.generateAsync(Requests.text("hi").build(), recorder);
    // The first attempt fails at once; the retry waits 2 s. Cancel while it waits.
    for (int i = 0; i < 100 && service.requests.isEmpty(); i++) {
      Thread.sleep(10);
    }
    Thread.sleep(300);
    assertFalse(call.isDone());
    long before = System.nanoTime();
    call.cancel();
    recorder.await();
    assertTrue(System.nanoTime() - before < TimeUnit.SECONDS.toNanos(1), "reported at once, not after the wait");
    assertEquals(Status.Code.CANCELLED, Status.fromThrowable(recorder.error.get()).getCode());
    assertEquals(1, service.requests.size());
  }

  @Test
  void aSessionGenerationIsIterable() throws Exception {
    try (Session session = client.openSession()) {
      SessionGeneration one = session.start(Requests.text("a").setRequestId("one")
          .setStopping(Requests.maxTokens(1)).build());
      List<GenerationEvent> events = new ArrayList<>();
      for (GenerationEvent event : one) {
        events.add(event);
      }
      assertEquals(3, events.size());
      assertTrue(events.get(2).isFinal());
      assertFalse(one.iterator().hasNext());

      SessionGeneration bad = session.start(Requests.text("bad").setRequestId("bad").build());
      List<GenerationEvent> seen = new ArrayList<>();
      StatusRuntimeException error = assertThrows(StatusRuntimeException.class, () -> bad.forEach(seen::add));
      assertEquals(Status.Code.INVALID_ARGUMENT, error.getStatus().getCode());
      assertTrue(seen.isEmpty());
    }
  }
}
