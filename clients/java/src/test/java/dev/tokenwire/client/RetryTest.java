package dev.tokenwire.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Retries (UNAVAILABLE, RESOURCE_EXHAUSTED before the first event) and typed error details. */
class RetryTest {
  private final FakeGenerationService service = new FakeGenerationService();
  private final List<Duration> sleeps = new CopyOnWriteArrayList<>();
  private Server server;
  private ManagedChannel channel;
  private TokenwireClient client;

  @BeforeEach
  void setUp() throws Exception {
    String name = InProcessServerBuilder.generateName();
    server = InProcessServerBuilder.forName(name).directExecutor().addService(service).build().start();
    channel = InProcessChannelBuilder.forName(name).directExecutor().build();
    client = TokenwireClient.of(channel).withTimeout(Duration.ofSeconds(10)).withSleeper(sleeps::add);
  }

  @AfterEach
  void tearDown() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  private static com.google.rpc.Status status(int code, String message, com.google.protobuf.Message... details) {
    com.google.rpc.Status.Builder status = com.google.rpc.Status.newBuilder().setCode(code).setMessage(message);
    for (com.google.protobuf.Message detail : details) {
      status.addDetails(Any.pack(detail));
    }
    return status.build();
  }

  private static RetryInfo retryInfo(Duration delay) {
    return RetryInfo.newBuilder().setRetryDelay(com.google.protobuf.Duration.newBuilder()
        .setSeconds(delay.getSeconds()).setNanos(delay.getNano())).build();
  }

  @Test
  void unavailableIsRetriedWithExponentialBackoffAndEqualJitter() {
    service.failuresLeft.set(2);
    RetryPolicy policy = RetryPolicy.builder().initialBackoff(Duration.ofMillis(100)).maxBackoff(Duration.ofMillis(150)).build();
    GenerationResult result = client.withRetryPolicy(policy).complete(Requests.text("hi").build());
    assertEquals("Hello world", result.text());
    assertEquals(3, service.requests.size());
    assertEquals(2, sleeps.size());
    assertBetween(Duration.ofMillis(50), Duration.ofMillis(100), sleeps.get(0));
    assertBetween(Duration.ofMillis(75), Duration.ofMillis(150), sleeps.get(1)); // 200 ms capped at 150
  }

  @Test
  void theServersRetryInfoDelayIsHonoured() {
    service.failuresLeft.set(1);
    service.failure = status(Code.RESOURCE_EXHAUSTED_VALUE, "queue full", retryInfo(Duration.ofMillis(1500)));
    assertEquals("Hello world", client.complete(Requests.text("hi").build()).text());
    assertEquals(List.of(Duration.ofMillis(1500)), sleeps);
  }

  @Test
  void aStreamCountsItsAttempts() {
    service.failuresLeft.set(2);
    service.failure = status(Code.RESOURCE_EXHAUSTED_VALUE, "busy", retryInfo(Duration.ofMillis(10)));
    try (GenerationStream stream = client.withRetryPolicy(RetryPolicy.builder().maxAttempts(10).build())
        .generate(Requests.text("hi").build())) {
      assertEquals(1, stream.attempts(), "the first call is started at once");
      assertEquals("Hello world", stream.collect(text -> {}).text());
      assertEquals(3, stream.attempts());
    }
    assertEquals(3, service.requests.size());
    assertEquals(List.of(Duration.ofMillis(10), Duration.ofMillis(10)), sleeps);
    try (GenerationStream stream = client.generate(Requests.text("hi").build())) {
      stream.collect(text -> {});
      assertEquals(1, stream.attempts(), "a call that succeeds at once is one attempt");
    }
  }

  @Test
  void aStreamThatGivesUpCountsEveryAttempt() {
    service.failuresLeft.set(10);
    try (GenerationStream stream = client.withRetryPolicy(RetryPolicy.builder().maxAttempts(3).build())
        .generate(Requests.text("hi").build())) {
      assertThrows(StatusRuntimeException.class, () -> stream.collect(text -> {}));
      assertEquals(3, stream.attempts());
    }
  }

  @Test
  void aRetryInfoDelayAboveTheCapIsFinalAndItsDetailsAreReadable() {
    service.failuresLeft.set(1);
    service.failure = status(Code.RESOURCE_EXHAUSTED_VALUE, "queue full", retryInfo(Duration.ofSeconds(60)),
        ErrorInfo.newBuilder().setReason("ENGINE_QUEUE_FULL").setDomain("tokenwire.dev").build());
    StatusRuntimeException error =
        assertThrows(StatusRuntimeException.class, () -> client.complete(Requests.text("hi").build()));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, error.getStatus().getCode());
    assertEquals(1, service.requests.size());
    assertTrue(sleeps.isEmpty());
    ErrorDetails details = ErrorDetails.of(error);
    assertEquals(Duration.ofSeconds(60), details.retryDelay().orElseThrow());
    assertEquals("ENGINE_QUEUE_FULL", details.reason().orElseThrow());
    assertEquals("tokenwire.dev", details.errorInfo().orElseThrow().getDomain());
    assertTrue(details.fieldViolations().isEmpty());
  }

  @Test
  void nothingIsRetriedAfterTheFirstEvent() {
    try (GenerationStream stream = client.generate(Requests.text("fail-after-start").build())) {
      assertInstanceOf(GenerationEvent.Started.class, stream.next());
      StatusRuntimeException error = assertThrows(StatusRuntimeException.class, stream::hasNext);
      assertEquals(Status.Code.UNAVAILABLE, error.getStatus().getCode());
    }
    assertEquals(1, service.requests.size());
    assertTrue(sleeps.isEmpty());
  }

  @Test
  void otherCodesAreNotRetriedAndCarryTheirFieldViolations() {
    service.failuresLeft.set(1);
    service.failure = status(Code.INVALID_ARGUMENT_VALUE, "bad request", BadRequest.newBuilder()
        .addFieldViolations(BadRequest.FieldViolation.newBuilder().setField("stopping.max_tokens").setDescription("too big"))
        .build());
    StatusRuntimeException error =
        assertThrows(StatusRuntimeException.class, () -> client.complete(Requests.text("hi").build()));
    assertEquals(1, service.requests.size());
    ErrorDetails details = ErrorDetails.of(error);
    assertEquals(Status.Code.INVALID_ARGUMENT, details.code());
    assertEquals("bad request", details.message());
    assertEquals("stopping.max_tokens", details.fieldViolations().get(0).getField());
    assertEquals("too big", details.fieldViolations().get(0).getDescription());
    assertTrue(details.retryDelay().isEmpty());
  }

  @Test
  void attemptsAreCapped() {
    service.failuresLeft.set(10);
    StatusRuntimeException error = assertThrows(StatusRuntimeException.class,
        () -> client.withRetryPolicy(RetryPolicy.builder().maxAttempts(3).build()).complete(Requests.text("hi").build()));
    assertEquals(Status.Code.UNAVAILABLE, error.getStatus().getCode());
    assertEquals(3, service.requests.size());
    assertEquals(2, sleeps.size());
  }

  @Test
  void retriesCanBeTurnedOffPerCall() {
    service.failuresLeft.set(1);
    assertThrows(StatusRuntimeException.class,
        () -> client.withRetryPolicy(RetryPolicy.disabled()).complete(Requests.text("hi").build()));
    assertEquals(1, service.requests.size());
  }

  @Test
  void noWaitGoesPastTheDeadline() {
    service.failuresLeft.set(1);
    RetryPolicy slow = RetryPolicy.builder().initialBackoff(Duration.ofSeconds(4)).maxBackoff(Duration.ofSeconds(4)).build();
    StatusRuntimeException error = assertThrows(StatusRuntimeException.class, () -> client
        .withTimeout(Duration.ofSeconds(1)).withRetryPolicy(slow).complete(Requests.text("hi").build()));
    assertEquals(Status.Code.UNAVAILABLE, error.getStatus().getCode());
    assertTrue(sleeps.isEmpty());
    assertEquals(1, service.requests.size());
  }

  @Test
  void unaryCallsAreRetriedToo() {
    service.failuresLeft.set(1);
    service.failure = status(Code.UNAVAILABLE_VALUE, "later", retryInfo(Duration.ofMillis(10)));
    assertTrue(client.abort("running"));
    assertEquals(2, service.aborts.size());
    assertEquals(List.of(Duration.ofMillis(10)), sleeps);
  }

  @Test
  void aSessionStartIsSentAgainWhileItHasNotStarted() throws Exception {
    service.failuresLeft.set(2);
    service.failure = status(Code.RESOURCE_EXHAUSTED_VALUE, "queue full", retryInfo(Duration.ofMillis(10)));
    try (Session session = client.openSession()) {
      SessionGeneration generation = session.start(Requests.text("a").setRequestId("busy")
          .setStopping(Requests.maxTokens(1)).build());
      GenerationResult result = generation.result().get(10, TimeUnit.SECONDS);
      assertEquals("x", result.text());
      assertEquals(3, generation.attempts());
      assertEquals(3, service.requests.size());
      assertInstanceOf(GenerationEvent.Started.class, generation.take(), "the retried errors are not events");
    }
  }

  @Test
  void aSessionStartWithAFinalErrorFailsWithItsDetails() throws Exception {
    service.failuresLeft.set(1);
    service.failure = status(Code.RESOURCE_EXHAUSTED_VALUE, "queue full", retryInfo(Duration.ofSeconds(60)));
    try (Session session = client.openSession()) {
      SessionGeneration generation = session.start(Requests.text("a").setRequestId("busy").build());
      ExecutionException error =
          assertThrows(ExecutionException.class, () -> generation.result().get(10, TimeUnit.SECONDS));
      assertEquals(Duration.ofSeconds(60), ErrorDetails.of(error).retryDelay().orElseThrow());
      assertEquals(1, service.requests.size());
    }
  }

  @Test
  void cancellingASessionGenerationWaitingToRetryEndsItAtOnce() throws Exception {
    service.failuresLeft.set(1);
    service.failure = status(Code.UNAVAILABLE_VALUE, "later", retryInfo(Duration.ofSeconds(5)));
    try (Session session = client.openSession()) {
      SessionGeneration generation = session.start(Requests.text("a").setRequestId("wait").build());
      generation.cancel();
      ExecutionException error =
          assertThrows(ExecutionException.class, () -> generation.result().get(2, TimeUnit.SECONDS));
      assertEquals(Status.Code.UNAVAILABLE, ErrorDetails.of(error).code());
      assertEquals(1, service.requests.size());
    }
  }

  @Test
  void policyRejectsNonsense() {
    assertThrows(IllegalArgumentException.class, () -> RetryPolicy.builder().maxAttempts(0));
    assertThrows(IllegalArgumentException.class, () -> RetryPolicy.builder().multiplier(0.5));
    assertThrows(IllegalArgumentException.class, () -> RetryPolicy.builder().initialBackoff(Duration.ofMillis(-1)));
    for (int attempt = 1; attempt < 10; attempt++) {
      Duration wait = RetryPolicy.defaults().backoff(attempt);
      assertTrue(wait.compareTo(Duration.ofSeconds(5)) <= 0, wait.toString());
    }
  }

  private static void assertBetween(Duration low, Duration high, Duration actual) {
    assertTrue(actual.compareTo(low) >= 0 && actual.compareTo(high) <= 0, actual + " not in [" + low + ", " + high + "]");
  }
}
