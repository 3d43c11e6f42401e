package dev.tokenwire.examples;

import dev.tokenwire.client.Requests;
import dev.tokenwire.client.TokenwireClient;
import dev.tokenwire.v1.TokenizeResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;

/**
 * Tokenizes a conversation (a system and a user message) and a text, and turns the ids back into
 * text. Prints {@code chat_tokens <n>}, {@code rendered <the rendered prompt as JSON>},
 * {@code kept <detokenize(chat ids, keep special tokens) as JSON>}, {@code text_tokens <n>} and
 * {@code text <detokenize(text ids) as JSON>}. The server is at $TOKENWIRE_TARGET (default
 * 127.0.0.1:50051), TLS and token as for {@link StreamExample}. A failed call prints
 * {@code error: <CODE>: <description>} to stderr and exits 1.
 */
public final class TokenizeExample {
  private TokenizeExample() {}

  public static void main(String[] args) {
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    try (TokenwireClient client = TokenwireClient.fromEnvironment()) {
      TokenwireClient timed = client.withTimeout(Duration.ofSeconds(30));
      TokenizeResponse chat = timed.tokenize(List.of(
          Requests.message("system", "You are a helpful assistant."),
          Requests.message("user", "What is the capital of France?")));
      out.printf("chat_tokens %d%n", chat.getTokenIdsCount());
      out.printf("rendered %s%n", Json.quote(chat.getRenderedPrompt()));
      out.printf("kept %s%n", Json.quote(timed.detokenize(chat.getTokenIdsList(), true)));
      TokenizeResponse text = timed.tokenize("Tokenizers split text: naïve café, 東京.");
      out.printf("text_tokens %d%n", text.getTokenIdsCount());
      out.printf("text %s%n", Json.quote(timed.detokenize(text.getTokenIdsList(), false)));
    } catch (StatusRuntimeException e) {
      Status status = e.getStatus();
      System.err.printf("error: %s: %s%n", status.getCode(), status.getDescription());
      System.exit(1);
    } catch (RuntimeException e) {
      System.err.printf("error: %s%n", e.getMessage());
      System.exit(1);
    }
  }
}
