package dev.tokenwire.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.rpc.Code;
import com.google.rpc.RetryInfo;
import dev.tokenwire.v1.ChatMessage;
import dev.tokenwire.v1.DetokenizeRequest;
import dev.tokenwire.v1.TokenizeRequest;
import dev.tokenwire.v1.TokenizeResponse;
import io.grpc.Deadline;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** tokenize (text and chat) and detokenize: what is sent, what comes back, deadlines and retries. */
class ModelServiceTest {
  private static final Duration TIMEOUT = Duration.ofSeconds(10);

  private final FakeModelService service = new FakeModelService();
  private final List<Duration> sleeps = new CopyOnWriteArrayList<>();
  private Server server;
  private ManagedChannel channel;
  private TokenwireClient client;

  @BeforeEach
  void setUp() throws Exception {
    String name = InProcessServerBuilder.generateName();
    server = InProcessServerBuilder.forName(name).directExecutor().addService(service).build().start();
    channel = InProcessChannelBuilder.forName(name).directExecutor().build();
    client = TokenwireClient.of(channel).withTimeout(TIMEOUT).withSleeper(sleeps::add);
  }

  @AfterEach
  void tearDown() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  private static List<Integer> codePoints(String text) {
    return text.codePoints().boxed().toList();
  }

  private static com.google.rpc.Status unavailable(Duration retryDelay) {
    return com.google.rpc.Status.newBuilder().setCode(Code.UNAVAILABLE_VALUE).setMessage("later")
        .addDetails(Any.pack(RetryInfo.newBuilder().setRetryDelay(com.google.protobuf.Duration.newBuilder()
            .setSeconds(retryDelay.getSeconds()).setNanos(retryDelay.getNano())).build()))
        .build();
  }

  @Test
  void tokenizeChatSendsTheConversationAndReturnsIdsAndTheRenderedPrompt() {
    List<ChatMessage> messages = List.of(
        Requests.message("system", "Be brief."), Requests.message("user", "Hi"));
    TokenizeResponse response = client.tokenize(messages);
    String rendered = "<|system|>Be brief.\n<|user|>Hi\n<|assistant|>";
    assertEquals(rendered, response.getRenderedPrompt());
    assertEquals(codePoints(rendered), response.getTokenIdsList());

    TokenizeRequest sent = assertInstanceOf(TokenizeRequest.class, service.requests.get(0));
    assertEquals(TokenizeRequest.InputCase.CHAT, sent.getInputCase());
    assertEquals(messages, sent.getChat().getMessagesList());
  }

  @Test
  void tokenizeTextSendsTextAndHasNoRenderedPrompt() {
    TokenizeResponse response = client.tokenize("Hi");
    assertEquals(codePoints("Hi"), response.getTokenIdsList());
    assertEquals("", response.getRenderedPrompt());
    TokenizeRequest sent = assertInstanceOf(TokenizeRequest.class, service.requests.get(0));
    assertEquals(TokenizeRequest.InputCase.TEXT, sent.getInputCase());
    assertEquals("Hi", sent.getText());
  }

  @Test
  void anEmptyConversationIsRefusedWithItsFieldViolationAndNotRetried() {
    StatusRuntimeException error = assertThrows(StatusRuntimeException.class, () -> client.tokenize(List.of()));
    ErrorDetails details = ErrorDetails.of(error);
    assertEquals(Status.Code.INVALID_ARGUMENT, details.code());
    assertEquals("chat.messages", details.fieldViolations().get(0).getField());
    assertEquals(1, service.requests.size());
    assertTrue(sleeps.isEmpty());
  }

  @Test
  void detokenizeReturnsTheTextAndKeepsSpecialTokensOnlyWhenAsked() {
    List<Integer> ids = new ArrayList<>();
    ids.add(FakeModelService.SPECIAL);
    ids.addAll(codePoints("Hello"));
    assertEquals("Hello", client.detokenize(ids, false));
    assertEquals(FakeModelService.SPECIAL_TEXT + "Hello", client.detokenize(ids, true));

    DetokenizeRequest dropped = assertInstanceOf(DetokenizeRequest.class, service.requests.get(0));
    assertEquals(ids, dropped.getTokenIdsList());
    assertFalse(dropped.getKeepSpecialTokens());
    assertTrue(assertInstanceOf(DetokenizeRequest.class, service.requests.get(1)).getKeepSpecialTokens());
    assertEquals("", client.detokenize(List.of(), false));
  }

  @Test
  void tokenizeThenDetokenizeRoundTrips() {
    TokenizeResponse tokens = client.tokenize(List.of(Requests.message("user", "¿Qué tal? 🙂")));
    assertEquals(tokens.getRenderedPrompt(), client.detokenize(tokens.getTokenIdsList(), true));
  }

  @Test
  void detokenizeRefusesNegativeAndMissingIdsBeforeSendingAnything() {
    IllegalArgumentException negative =
        assertThrows(IllegalArgumentException.class, () -> client.detokenize(List.of(72, -1), false));
    assertTrue(negative.getMessage().contains("-1"), negative.getMessage());
    assertThrows(NullPointerException.class, () -> client.detokenize(Arrays.asList(72, null), false));
    assertThrows(NullPointerException.class, () -> client.detokenize(null, false));
    assertThrows(NullPointerException.class, () -> client.tokenize((List<ChatMessage>) null));
    assertTrue(service.requests.isEmpty());
  }

  @Test
  void bothCallsCarryTheClientsDeadlineAndNoneWithoutATimeout() {
    client.tokenize(List.of(Requests.message("user", "Hi")));
    client.detokenize(List.of(72), false);
    assertEquals(2, service.deadlines.size());
    for (Optional<Deadline> deadline : service.deadlines) {
      long left = deadline.orElseThrow().timeRemaining(TimeUnit.MILLISECONDS);
      assertTrue(left > 0 && left <= TIMEOUT.toMillis(), left + " ms left");
    }
    TokenwireClient untimed = TokenwireClient.of(channel);
    untimed.tokenize(List.of(Requests.message("user", "Hi")));
    untimed.detokenize(List.of(72), false);
    assertEquals(List.of(Optional.empty(), Optional.empty()), service.deadlines.subList(2, 4));
  }

  @Test
  void unavailableIsRetriedWithinOneDeadlineForBoth() {
    // A real 100 ms wait: a deadline made afresh for the retry would end 100 ms later.
    TokenwireClient waiting = client.withSleeper(delay -> {
      sleeps.add(delay);
      Thread.sleep(delay.toMillis());
    });
    service.failure = unavailable(Duration.ofMillis(100));

    service.failuresLeft.set(1);
    TokenizeResponse response = waiting.tokenize(List.of(Requests.message("user", "Hi")));
    assertEquals("<|user|>Hi\n<|assistant|>", response.getRenderedPrompt());
    assertEquals(2, service.requests.size());
    assertEquals(service.requests.get(0), service.requests.get(1));

    service.failuresLeft.set(1);
    assertEquals("Hi", waiting.detokenize(codePoints("Hi"), false));
    assertEquals(4, service.requests.size());
    assertEquals(service.requests.get(2), service.requests.get(3));
    assertEquals(List.of(Duration.ofMillis(100), Duration.ofMillis(100)), sleeps);

    for (int first : new int[] {0, 2}) {
      long firstLeft = service.deadlines.get(first).orElseThrow().timeRemaining(TimeUnit.MILLISECONDS);
      long retryLeft = service.deadlines.get(first + 1).orElseThrow().timeRemaining(TimeUnit.MILLISECONDS);
      assertTrue(retryLeft <= firstLeft + 50, "retry " + retryLeft + " ms left, first " + firstLeft + " ms");
    }
  }

  @Test
  void retriesFollowThePolicyAndStopAtTheDeadline() {
    service.failuresLeft.set(10);
    StatusRuntimeException capped = assertThrows(StatusRuntimeException.class, () -> client
        .withRetryPolicy(RetryPolicy.builder().maxAttempts(3).build()).detokenize(List.of(72), false));
    assertEquals(Status.Code.UNAVAILABLE, capped.getStatus().getCode());
    assertEquals(3, service.requests.size());
    assertEquals(2, sleeps.size());

    service.failuresLeft.set(1);
    assertThrows(StatusRuntimeException.class, () -> client.withRetryPolicy(RetryPolicy.disabled())
        .tokenize(List.of(Requests.message("user", "Hi"))));
    assertEquals(4, service.requests.size());

    service.failuresLeft.set(1);
    RetryPolicy slow = RetryPolicy.builder().initialBackoff(Duration.ofSeconds(4)).maxBackoff(Duration.ofSeconds(4)).build();
    assertThrows(StatusRuntimeException.class, () -> client.withTimeout(Duration.ofSeconds(1)).withRetryPolicy(slow)
        .tokenize(List.of(Requests.message("user", "Hi"))));
    assertEquals(5, service.requests.size());
    assertEquals(2, sleeps.size(), "a wait past the deadline is not taken");
  }
}
