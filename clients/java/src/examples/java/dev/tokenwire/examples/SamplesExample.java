package dev.tokenwire.examples;

import dev.tokenwire.client.GenerationEvent;
import dev.tokenwire.client.GenerationResult;
import dev.tokenwire.client.GenerationStream;
import dev.tokenwire.client.Requests;
import dev.tokenwire.client.TokenwireClient;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;

/**
 * Asks for three samples of one prompt ({@code n} = 3) on one Generate stream and prints one line
 * per sample, in sample-index order: {@code <index> <FINISH_REASON> <completion_tokens> <text as
 * JSON>}, then {@code prompt_tokens <Started.prompt_tokens> <sum of the samples'
 * usage.prompt_tokens>} (the prompt is counted once, so the two agree). The server is at
 * $TOKENWIRE_TARGET (default 127.0.0.1:50051), TLS and token as for {@link StreamExample}. A
 * failed call prints {@code error: <CODE>: <description>} to stderr and exits 1.
 */
public final class SamplesExample {
  private SamplesExample() {}

  public static void main(String[] args) {
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    try (TokenwireClient client = TokenwireClient.fromEnvironment();
        GenerationStream stream = client.withTimeout(Duration.ofSeconds(60))
            .generate(Requests.chat("Name a colour and say why you like it.")
                .setN(3)
                .setSampling(Requests.sampling(1.0f, 7))
                .setStopping(Requests.maxTokens(16))
                .build())) {
      if (!(stream.next() instanceof GenerationEvent.Started started)) {
        throw new IllegalStateException("the stream did not begin with a started event");
      }
      // The samples' deltas arrive interleaved; collectSamples sorts them out by sample index.
      List<GenerationResult> samples = stream.collectSamples((text, sampleIndex) -> {});
      int promptTokens = 0;
      for (GenerationResult sample : samples) {
        out.printf("%d %s %d %s%n",
            sample.sampleIndex(), sample.reason().name(), sample.completionTokens(), Json.quote(sample.text()));
        promptTokens += sample.finished().getUsage().getPromptTokens();
      }
      out.printf("prompt_tokens %d %d%n", started.promptTokens(), promptTokens);
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
