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
 * Streams one completion to stdout. Usage: {@code StreamExample [prompt]} with the server at
 * $TOKENWIRE_TARGET (default 127.0.0.1:50051). TLS and auth from the environment:
 * TOKENWIRE_TLS_CA (CA file; turns TLS on), TOKENWIRE_CLIENT_CERT + TOKENWIRE_CLIENT_KEY (client
 * certificate and PKCS#8 key, mTLS), TOKENWIRE_TOKEN (bearer token). A failed call prints
 * {@code error: <CODE>: <description>} to stderr and exits 1.
 */
public final class StreamExample {
  private StreamExample() {}

  /** With TOKENWIRE_TRACEPARENT set, the call carries it as traceparent metadata (continuing that trace). */
  private static TokenwireClient traced(TokenwireClient client) {
    String traceparent = System.getenv("TOKENWIRE_TRACEPARENT");
    return traceparent == null || traceparent.isBlank() ? client : client.withMetadata("traceparent", traceparent);
  }

  public static void main(String[] args) {
    String prompt = args.length > 0 ? String.join(" ", args) : "What is the capital of France?";
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    try (TokenwireClient client = TokenwireClient.fromEnvironment();
        GenerationStream stream = traced(client.withTimeout(Duration.ofSeconds(60))).generate(Requests.chat(prompt)
            .setSampling(Requests.greedy())
            .setStopping(Requests.maxTokens(32))
            .build())) {
      GenerationResult result = stream.collect(out::print);
      out.println();
      System.err.printf("[%s, %d tokens]%n", result.reason(), result.completionTokens());
    } catch (StatusRuntimeException e) {
      Status status = e.getStatus();
      System.err.printf("error: %s: %s%n", status.getCode(), status.getDescription());
      System.exit(1);
    }
  }
}
