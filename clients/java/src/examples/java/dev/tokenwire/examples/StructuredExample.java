package dev.tokenwire.examples;

import dev.tokenwire.client.GenerationResult;
import dev.tokenwire.client.GenerationStream;
import dev.tokenwire.client.Requests;
import dev.tokenwire.client.TokenwireClient;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * Extracts a person as JSON that follows a JSON Schema (structured output) and prints two lines:
 * the generated JSON, then the finish reason (e.g. {@code FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE}).
 * The server is at $TOKENWIRE_TARGET (default 127.0.0.1:50051), TLS and token as for
 * {@link StreamExample}. A failed call prints {@code error: <CODE>: <description>} to stderr and
 * exits 1.
 */
public final class StructuredExample {
  private StructuredExample() {}

  static final String PROMPT = "Ada Lovelace was born in 1815 in London. Extract the person as JSON.";

  static final String SCHEMA = """
      {"type": "object", \
      "properties": {\
      "name": {"type": "string", "maxLength": 40}, \
      "birth_year": {"type": "integer", "minimum": 1000, "maximum": 2100}, \
      "city": {"type": "string", "maxLength": 40}}, \
      "required": ["name", "birth_year", "city"], \
      "additionalProperties": false}""";

  public static void main(String[] args) {
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    try (TokenwireClient client = TokenwireClient.fromEnvironment();
        GenerationStream stream = client.withTimeout(Duration.ofSeconds(60)).generate(Requests.chat(PROMPT)
            .setSampling(Requests.greedy())
            .setStopping(Requests.maxTokens(64))
            .setStructuredOutput(Requests.jsonSchema(SCHEMA))
            .build())) {
      GenerationResult result = stream.collect(text -> {});
      out.println(result.text());
      out.println(result.reason().name());
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
