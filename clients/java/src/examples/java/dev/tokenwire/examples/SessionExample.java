package dev.tokenwire.examples;

import dev.tokenwire.client.GenerationEvent;
import dev.tokenwire.client.GenerationResult;
import dev.tokenwire.client.Requests;
import dev.tokenwire.client.Session;
import dev.tokenwire.client.SessionGeneration;
import dev.tokenwire.client.TokenwireClient;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;

/**
 * Starts two generations on one Session stream, cancels one after its first delta, and prints one
 * line per generation: {@code <request_id> <FINISH_REASON> <completion_tokens> <text as JSON>}.
 */
public final class SessionExample {
  private SessionExample() {}

  public static void main(String[] args) throws Exception {
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    try (TokenwireClient client = TokenwireClient.fromEnvironment();
        Session session = client.withTimeout(Duration.ofSeconds(60)).openSession()) {
      SessionGeneration keep = session.start(Requests.chat("Why is the sky blue?")
          .setRequestId("keep")
          .setSampling(Requests.greedy())
          .setStopping(Requests.maxTokens(12))
          .build());
      SessionGeneration drop = session.start(Requests.chat("Write a long story about a dragon.")
          .setRequestId("drop")
          .setSampling(Requests.greedy())
          .setStopping(Requests.maxTokens(32))
          .build());

      GenerationEvent event;
      do {
        event = drop.take();
      } while (!(event instanceof GenerationEvent.Delta) && !event.isFinal());
      drop.cancel();
      session.halfClose();

      for (SessionGeneration generation : List.of(keep, drop)) {
        GenerationResult result = generation.result().get();
        out.printf("%s %s %d %s%n",
            result.requestId(), result.reason().name(), result.completionTokens(), Json.quote(result.text()));
      }
    }
  }
}
