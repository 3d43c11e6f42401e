package dev.tokenwire.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.rpc.BadRequest;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Failures that used to pass unnoticed (issue 16, item 1). */
class SilentFailureTest {
  private final FakeGenerationService service = new FakeGenerationService();
  private Server server;
  private ManagedChannel channel;
  private TokenwireClient client;

  @BeforeEach
  void setUp() throws Exception {
    String name = InProcessServerBuilder.generateName();
    server = InProcessServerBuilder.forName(name).directExecutor().addService(service).build().start();
    channel = InProcessChannelBuilder.forName(name).directExecutor().build();
    client = TokenwireClient.of(channel).withTimeout(Duration.ofSeconds(10));
  }

  @AfterEach
  void tearDown() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  @Test
  void iteratingAGenerationThatEndsWithoutItsFinishedEventThrows() {
    try (GenerationStream stream = client.generate(Requests.text("truncated").build())) {
      List<GenerationEvent> events = new ArrayList<>();
      StatusRuntimeException error = assertThrows(StatusRuntimeException.class, () -> stream.forEach(events::add));
      assertEquals(Status.Code.INTERNAL, error.getStatus().getCode());
      assertTrue(error.getStatus().getDescription().contains("without a finished event"),
          error.getStatus().getDescription());
      assertEquals(2, events.size(), "started and the delta were delivered first");
      assertFalse(stream.hasNext(), "the stream has ended after the error");
    }
  }

  @Test
  void iteratingSamplesThatEndBeforeEverySampleFinishedThrows() {
    try (GenerationStream stream = client.generate(Requests.text("short").setN(3)
        .setSampling(Requests.sampling(1f, 7)).build())) {
      List<GenerationEvent> events = new ArrayList<>();
      StatusRuntimeException error = assertThrows(StatusRuntimeException.class, () -> stream.forEach(events::add));
      assertEquals(Status.Code.INTERNAL, error.getStatus().getCode());
      assertTrue(error.getStatus().getDescription().contains("1 finished events of 3 samples"),
          error.getStatus().getDescription());
      assertEquals(1 + 6 + 1, events.size());
    }
  }

  @Test
  void aFailedSessionStreamKeepsTheStatusDetails() throws Exception {
    try (Session session = client.openSession()) {
      SessionGeneration generation = session.start(Requests.text("explode").setRequestId("boom").build());
      ExecutionException error =
          assertThrows(ExecutionException.class, () -> generation.result().get(10, TimeUnit.SECONDS));
      com.google.rpc.Status status = StatusProto.fromThrowable(error.getCause());
      assertEquals(com.google.rpc.Code.INVALID_ARGUMENT_VALUE, status.getCode());
      assertEquals(1, status.getDetailsCount(), "the BadRequest detail survives");
      assertEquals("start.text", status.getDetails(0).unpack(BadRequest.class).getFieldViolations(0).getField());
      GenerationEvent.Failed failed = assertInstanceOf(GenerationEvent.Failed.class, generation.take());
      assertEquals(1, failed.status().getDetailsCount());
      assertEquals("the whole stream is bad", failed.status().getMessage());
    }
  }
}
