package dev.tokenwire.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tokenwire.v1.FinishReason;
import dev.tokenwire.v1.GenerateRequest;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class TokenwireClientTest {
  private static final Duration WAIT = Duration.ofSeconds(10);

  private final FakeGenerationService service = new FakeGenerationService();
  private Server server;
  private ManagedChannel channel;
  private TokenwireClient client;

  @BeforeEach
  void setUp() throws Exception {
    String name = InProcessServerBuilder.generateName();
    server = InProcessServerBuilder.forName(name).directExecutor()
        .addService(service).build().start();
    channel = InProcessChannelBuilder.forName(name).directExecutor().build();
    client = TokenwireClient.of(channel).withTimeout(WAIT);
  }

  @AfterEach
  void tearDown() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  private static GenerateRequest request(String id, String text, int maxTokens) {
    return Requests.text(text).setRequestId(id).setStopping(Requests.maxTokens(maxTokens)).build();
  }

  @Test
  void generateStreamsEventsAndCollectsTheText() {
    List<String> texts = new ArrayList<>();
    GenerationResult result = client.generate(Requests.text("hi").build()).collect(texts::add);
    assertEquals(List.of("Hello", " world"), texts);
    assertEquals("Hello world", result.text());
    assertEquals("server-id", result.requestId());
    assertEquals(FinishReason.FINISH_REASON_LENGTH, result.reason());
    assertEquals(2, result.completionTokens());
    assertEquals(List.of(5, 6), result.tokenIds());
  }

  @Test
  void generateIteratesTypedEvents() {
    try (GenerationStream stream = client.generate(request("r1", "hi", 8))) {
      List<GenerationEvent> events = new ArrayList<>();
      stream.forEach(events::add);
      assertEquals(4, events.size());
      assertInstanceOf(GenerationEvent.Started.class, events.get(0));
      assertEquals("Hello", assertInstanceOf(GenerationEvent.Delta.class, events.get(1)).text());
      assertTrue(events.get(3).isFinal());
      assertEquals("r1", events.get(3).requestId());
    }
  }

  @Test
  void sessionRoutesEventsByIdAndCancelsOneGeneration() throws Exception {
    try (Session session = client.openSession()) {
      SessionGeneration keep = session.start(request("keep", "a", 1));
      SessionGeneration drop = session.start(request("drop", "b", 8));
      assertInstanceOf(GenerationEvent.Started.class, drop.take());
      assertEquals("x", assertInstanceOf(GenerationEvent.Delta.class, drop.take()).text());
      drop.cancel();
      session.halfClose();

      GenerationResult kept = keep.result().get(10, TimeUnit.SECONDS);
      assertEquals(FinishReason.FINISH_REASON_LENGTH, kept.reason());
      assertEquals("x", kept.text());
      GenerationResult dropped = drop.result().get(10, TimeUnit.SECONDS);
      assertEquals("drop", dropped.requestId());
      assertEquals(FinishReason.FINISH_REASON_CANCELLED, dropped.reason());
      assertEquals(1, dropped.completionTokens());
      assertTrue(drop.take().isFinal());
      assertThrows(IllegalStateException.class, drop::take);
      assertTrue(session.awaitTermination(WAIT));
    }
  }

  @Test
  void sessionErrorFailsOnlyItsGeneration() throws Exception {
    try (Session session = client.openSession()) {
      SessionGeneration bad = session.start(request("bad", "bad", 4));
      SessionGeneration good = session.start(request("good", "ok", 1));
      ExecutionException error = assertThrows(ExecutionException.class, () -> bad.result().get(10, TimeUnit.SECONDS));
      StatusRuntimeException status = assertInstanceOf(StatusRuntimeException.class, error.getCause());
      assertEquals(Status.Code.INVALID_ARGUMENT, status.getStatus().getCode());
      GenerationEvent.Failed failed = assertInstanceOf(GenerationEvent.Failed.class, bad.take());
      assertEquals(Status.Code.INVALID_ARGUMENT, failed.code());
      assertEquals(FinishReason.FINISH_REASON_LENGTH, good.result().get(10, TimeUnit.SECONDS).reason());
    }
  }

  @Test
  void sessionRejectsMissingAndDuplicateIds() {
    try (Session session = client.openSession()) {
      assertThrows(IllegalArgumentException.class, () -> session.start(request("", "a", 8)));
      session.start(request("same", "a", 8));
      assertThrows(IllegalArgumentException.class, () -> session.start(request("same", "a", 8)));
    }
  }

  @Test
  void closingASessionFailsWhatIsStillRunning() throws Exception {
    Session session = client.openSession();
    SessionGeneration running = session.start(request("running", "a", 8));
    session.close();
    ExecutionException error =
        assertThrows(ExecutionException.class, () -> running.result().get(10, TimeUnit.SECONDS));
    assertEquals(Status.Code.CANCELLED,
        assertInstanceOf(StatusRuntimeException.class, error.getCause()).getStatus().getCode());
    assertThrows(IllegalStateException.class, () -> session.start(request("late", "a", 8)));
  }

  private static GenerateRequest samples(String text, int n) {
    return Requests.text(text).setN(n).setSampling(Requests.sampling(1f, 7)).build();
  }

  @Test
  void generateWithSamplesReadsPastTheFirstFinishedEvent() {
    try (GenerationStream stream = client.generate(samples("hi", 3))) {
      assertEquals(3, stream.samples());
      List<GenerationEvent> events = new ArrayList<>();
      stream.forEach(events::add);
      // started, 2 deltas for each of 3 samples, 3 finished (sample 2 first).
      assertEquals(1 + 6 + 3, events.size());
      List<Integer> finishedOrder = events.stream()
          .filter(e -> e instanceof GenerationEvent.Finished)
          .map(e -> ((GenerationEvent.Finished) e).sampleIndex())
          .toList();
      assertEquals(List.of(2, 1, 0), finishedOrder);
      assertFalse(stream.hasNext());
    }
  }

  @Test
  void collectSamplesGivesOneResultPerSampleInIndexOrder() {
    List<String> seen = new ArrayList<>();
    List<GenerationResult> results =
        client.generate(samples("hi", 3)).collectSamples((text, sample) -> seen.add(sample + ":" + text));
    assertEquals(List.of("2:s2.0", "1:s1.0", "0:s0.0", "2:s2.1", "1:s1.1", "0:s0.1"), seen);
    assertEquals(3, results.size());
    for (int i = 0; i < 3; i++) {
      GenerationResult result = results.get(i);
      assertEquals(i, result.sampleIndex());
      assertEquals("s" + i + ".0s" + i + ".1", result.text());
      assertEquals(List.of(100 * i, 100 * i + 1), result.tokenIds());
      assertEquals(FinishReason.FINISH_REASON_LENGTH, result.reason());
      assertEquals("server-id", result.requestId());
    }
    // The prompt is counted once, in the first finished event to arrive (sample 2's).
    assertEquals(3, results.stream().mapToInt(r -> r.finished().getUsage().getPromptTokens()).sum());
    assertEquals(3, client.completeSamples(samples("hi", 3)).size());
  }

  @Test
  void collectSamplesCountsEventsReadBeforeIt() {
    try (GenerationStream stream = client.generate(samples("hi", 2))) {
      GenerationEvent.Started started = assertInstanceOf(GenerationEvent.Started.class, stream.next());
      assertEquals(3, started.promptTokens());
      GenerationEvent.Delta first = assertInstanceOf(GenerationEvent.Delta.class, stream.next());
      assertEquals(1, first.sampleIndex());
      List<GenerationResult> results = stream.collectSamples((text, sample) -> {});
      assertEquals("s1.0s1.1", results.get(1).text());
      assertEquals("s0.0s0.1", results.get(0).text());
    }
  }

  @Test
  void singleResultHelpersRefuseSamples() {
    IllegalArgumentException refused =
        assertThrows(IllegalArgumentException.class, () -> client.complete(samples("hi", 2)));
    assertTrue(refused.getMessage().contains("completeSamples"), refused.getMessage());
    assertTrue(service.requests.isEmpty(), "complete must refuse before sending anything");
    GenerationStream stream = client.generate(samples("hi", 2));
    IllegalStateException collect = assertThrows(IllegalStateException.class, () -> stream.collect(text -> {}));
    assertTrue(collect.getMessage().contains("collectSamples"), collect.getMessage());
    // n = 1 (and n = 0, the same) keep working with collect.
    assertEquals("Hello world", client.complete(Requests.text("hi").setN(1).build()).text());
    assertEquals("Hello world", client.complete(Requests.text("hi").setN(0).build()).text());
  }

  @Test
  void aStreamThatEndsBeforeEverySampleFinishedIsAnError() {
    StatusRuntimeException error = assertThrows(StatusRuntimeException.class,
        () -> client.generate(samples("short", 3)).collectSamples((text, sample) -> {}));
    assertEquals(Status.Code.INTERNAL, error.getStatus().getCode());
    assertTrue(error.getMessage().contains("1 finished events of 3 samples"), error.getMessage());
  }

  @Test
  void aSampleIndexOutOfRangeIsAnInternalError() {
    StatusRuntimeException error = assertThrows(StatusRuntimeException.class,
        () -> client.generate(samples("stray", 2)).collectSamples((text, sample) -> {}));
    assertEquals(Status.Code.INTERNAL, error.getStatus().getCode());
    assertTrue(error.getStatus().getDescription().contains("sample index 2"), error.getStatus().getDescription());
  }

  @Test
  void structuredOutputIsSentAndItsFinishReasonReported() {
    GenerateRequest request = Requests.chat("Extract the person as JSON.")
        .setSampling(Requests.logitBias(Requests.greedy(), Map.of(13, -100f, 42, 2.5f)))
        .setStructuredOutput(Requests.jsonSchema("{\"type\": \"object\"}"))
        .build();
    GenerationResult result = client.complete(request);
    assertEquals("{\"a\": 1}", result.text());
    assertEquals(FinishReason.FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE, result.reason());
    assertTrue(result.isComplete());
    GenerateRequest sent = service.requests.get(0);
    assertEquals("{\"type\": \"object\"}", sent.getStructuredOutput().getJsonSchema());
    assertEquals(Map.of(13, -100f, 42, 2.5f), sent.getSampling().getLogitBiasMap());
    assertEquals(0f, sent.getSampling().getTemperature());
  }

  @Test
  void sessionGenerationWithSamplesEndsAfterItsLastSample() throws Exception {
    try (Session session = client.openSession()) {
      SessionGeneration generation = session.start(Requests.text("a").setRequestId("many").setN(2)
          .setSampling(Requests.sampling(1f, 7)).build());
      assertEquals(2, generation.sampleCount());
      assertThrows(IllegalStateException.class, generation::result);
      assertInstanceOf(GenerationEvent.Started.class, generation.take());
      assertEquals(0, assertInstanceOf(GenerationEvent.Delta.class, generation.take()).sampleIndex());
      assertEquals(1, assertInstanceOf(GenerationEvent.Delta.class, generation.take()).sampleIndex());
      GenerationEvent.Finished first = assertInstanceOf(GenerationEvent.Finished.class, generation.take());
      assertEquals(0, first.sampleIndex());
      assertTrue(first.isFinal());
      assertFalse(generation.isDone(), "sample 1 is still running");
      generation.cancel();
      GenerationEvent.Finished last = assertInstanceOf(GenerationEvent.Finished.class, generation.take());
      assertEquals(1, last.sampleIndex());
      assertEquals(FinishReason.FINISH_REASON_CANCELLED, last.reason());
      assertThrows(IllegalStateException.class, generation::take);

      List<GenerationResult> results = generation.samples().get(10, TimeUnit.SECONDS);
      assertEquals(List.of("x0", "x1"), results.stream().map(GenerationResult::text).toList());
      assertEquals(List.of(FinishReason.FINISH_REASON_LENGTH, FinishReason.FINISH_REASON_CANCELLED),
          results.stream().map(GenerationResult::reason).toList());
      session.halfClose();
      assertTrue(session.awaitTermination(WAIT));
    }
  }

  @Test
  void sessionSamplesWorksForOneSampleToo() throws Exception {
    try (Session session = client.openSession()) {
      SessionGeneration one = session.start(request("one", "a", 1));
      List<GenerationResult> results = one.samples().get(10, TimeUnit.SECONDS);
      assertEquals(1, results.size());
      assertEquals(results.get(0), one.result().get(10, TimeUnit.SECONDS));
    }
  }

  @Test
  void abortReportsWhetherAGenerationWasCancelled() {
    assertTrue(client.abort("running"));
    assertFalse(client.abort("unknown"));
  }
}
