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
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class TokenwireClientTest {
  private static final Duration WAIT = Duration.ofSeconds(10);

  private Server server;
  private ManagedChannel channel;
  private TokenwireClient client;

  @BeforeEach
  void setUp() throws Exception {
    String name = InProcessServerBuilder.generateName();
    server = InProcessServerBuilder.forName(name).directExecutor()
        .addService(new FakeGenerationService()).build().start();
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

  @Test
  void abortReportsWhetherAGenerationWasCancelled() {
    assertTrue(client.abort("running"));
    assertFalse(client.abort("unknown"));
  }
}
