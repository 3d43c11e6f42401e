package dev.tokenwire.examples;

import com.google.rpc.BadRequest;
import dev.tokenwire.client.ErrorDetails;
import dev.tokenwire.client.GenerationResult;
import dev.tokenwire.client.GenerationStream;
import dev.tokenwire.client.Requests;
import dev.tokenwire.client.RetryPolicy;
import dev.tokenwire.client.TokenwireClient;
import dev.tokenwire.v1.SamplingParams;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;

/**
 * Retries and error details. First generates the text prompt "Hello" (max_tokens 8) with a retry
 * policy of up to 10 attempts, which waits the server's RetryInfo delay after a RESOURCE_EXHAUSTED
 * (a busy server) or UNAVAILABLE before the first event, reads it to the end and prints
 * {@code attempts <calls made>} and {@code completion_tokens <usage.completion_tokens>}. Then sends
 * an invalid request ({@code sampling.top_p} = 5) and prints {@code violation <field>
 * <description>} for each field violation of its INVALID_ARGUMENT. The server is at
 * $TOKENWIRE_TARGET (default 127.0.0.1:50051), TLS and token as for {@link StreamExample}. Any
 * other failure prints {@code error: ...} to stderr and exits 1.
 */
public final class RetryExample {
  private RetryExample() {}

  /** Up to 10 attempts; the server's RetryInfo delay (up to the default 30 s) is waited for. */
  static final RetryPolicy PATIENT = RetryPolicy.builder().maxAttempts(10).build();

  public static void main(String[] args) {
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    try (TokenwireClient client = TokenwireClient.fromEnvironment()) {
      TokenwireClient retrying = client.withTimeout(Duration.ofSeconds(60)).withRetryPolicy(PATIENT);
      try (GenerationStream stream = retrying.generate(Requests.text("Hello")
          .setStopping(Requests.maxTokens(8))
          .build())) {
        GenerationResult result = stream.collect(text -> {});
        out.printf("attempts %d%n", stream.attempts());
        out.printf("completion_tokens %d%n", result.finished().getUsage().getCompletionTokens());
      }

      List<BadRequest.FieldViolation> violations = fieldViolations(retrying, 5.0f);
      for (BadRequest.FieldViolation violation : violations) {
        out.printf("violation %s %s%n", violation.getField(), violation.getDescription());
      }
    } catch (StatusRuntimeException e) {
      Status status = e.getStatus();
      System.err.printf("error: %s: %s%n", status.getCode(), status.getDescription());
      System.exit(1);
    } catch (RuntimeException e) {
      System.err.printf("error: %s%n", e.getMessage());
      System.exit(1);
    }
  }

  /**
   * Sends a request with {@code sampling.top_p} = {@code topP} and returns the field violations of
   * the INVALID_ARGUMENT it must fail with.
   *
   * @throws StatusRuntimeException when it fails with another code
   * @throws IllegalStateException when it does not fail, or fails without a field violation
   */
  static List<BadRequest.FieldViolation> fieldViolations(TokenwireClient client, float topP) {
    try {
      client.complete(Requests.text("Hello")
          .setSampling(SamplingParams.newBuilder().setTopP(topP))
          .setStopping(Requests.maxTokens(8))
          .build());
    } catch (StatusRuntimeException e) {
      ErrorDetails details = ErrorDetails.of(e);
      if (details.code() != Status.Code.INVALID_ARGUMENT) {
        throw e;
      }
      if (details.fieldViolations().isEmpty()) {
        throw new IllegalStateException("INVALID_ARGUMENT without a field violation: " + details.message());
      }
      return details.fieldViolations();
    }
    throw new IllegalStateException("the request with top_p = " + topP + " was accepted");
  }
}
