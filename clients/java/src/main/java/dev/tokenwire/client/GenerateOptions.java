package dev.tokenwire.client;

import dev.tokenwire.v1.GenerateRequest;
import dev.tokenwire.v1.OutputOptions;
import dev.tokenwire.v1.SamplingParams;
import dev.tokenwire.v1.SpeculativeOptions;
import dev.tokenwire.v1.StoppingCriteria;
import dev.tokenwire.v1.StructuredOutput;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Typed options for a generation: every {@code GenerateRequest} field but the input (which
 * {@link Requests#text}, {@link Requests#chat} and {@link Requests#tokens} set), with Java types.
 * Unset options stay absent in the request (the server's defaults apply). Immutable; reuse one
 * for many requests.
 *
 * <pre>{@code
 * GenerateOptions options = GenerateOptions.builder()
 *     .temperature(0.7f).topP(0.9f).seed(7)
 *     .maxTokens(64).stop("\n\n")
 *     .logprobs(5)
 *     .timeout(Duration.ofSeconds(20))
 *     .build();
 * GenerateRequest request = Requests.chat("Tell me a joke.", options);
 * }</pre>
 */
public final class GenerateOptions {
  private final GenerateRequest template;

  private GenerateOptions(GenerateRequest template) {
    this.template = template;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The options as a request without an input (what {@link #applyTo} merges). */
  public GenerateRequest asRequest() {
    return template;
  }

  /**
   * Merges these options into {@code request}: set options replace single fields, and add to
   * repeated ones ({@code stop}, {@code stop_token_ids}) and to {@code logit_bias}.
   */
  public GenerateRequest.Builder applyTo(GenerateRequest.Builder request) {
    return request.mergeFrom(template);
  }

  /** A builder holding these options, to change some. */
  public Builder toBuilder() {
    Builder builder = new Builder();
    builder.request.mergeFrom(template);
    return builder;
  }

  @Override
  public String toString() {
    return "GenerateOptions{" + template.toString().replace('\n', ' ').trim() + "}";
  }

  /** Builds {@link GenerateOptions}. Unsigned proto fields refuse negative values. */
  public static final class Builder {
    private final GenerateRequest.Builder request = GenerateRequest.newBuilder();

    private Builder() {}

    private SamplingParams.Builder sampling() {
      return request.getSamplingBuilder();
    }

    private StoppingCriteria.Builder stopping() {
      return request.getStoppingBuilder();
    }

    private OutputOptions.Builder output() {
      return request.getOutputBuilder();
    }

    private static int unsigned(int value, String name) {
      if (value < 0) {
        throw new IllegalArgumentException(name + " must not be negative, not " + value);
      }
      return value;
    }

    /** {@code request_id}: required in a Session, optional for Generate. */
    public Builder requestId(String requestId) {
      request.setRequestId(Objects.requireNonNull(requestId, "requestId"));
      return this;
    }

    /** {@code sampling.temperature}: 0 is greedy. */
    public Builder temperature(float temperature) {
      sampling().setTemperature(temperature);
      return this;
    }

    /** Greedy decoding: {@code sampling.temperature} 0. */
    public Builder greedy() {
      return temperature(0f);
    }

    /** {@code sampling.top_p}, in (0, 1]. */
    public Builder topP(float topP) {
      sampling().setTopP(topP);
      return this;
    }

    /** {@code sampling.top_k}, at least 1. */
    public Builder topK(int topK) {
      sampling().setTopK(unsigned(topK, "topK"));
      return this;
    }

    /** {@code sampling.min_p}, in [0, 1]. */
    public Builder minP(float minP) {
      sampling().setMinP(minP);
      return this;
    }

    /** {@code sampling.seed} (unsigned 64-bit; a negative long is sent as its unsigned value). */
    public Builder seed(long seed) {
      sampling().setSeed(seed);
      return this;
    }

    /** {@code sampling.repetition_penalty}, in (0, 10]. */
    public Builder repetitionPenalty(float penalty) {
      sampling().setRepetitionPenalty(penalty);
      return this;
    }

    /** {@code sampling.presence_penalty}, in [-2, 2]. */
    public Builder presencePenalty(float penalty) {
      sampling().setPresencePenalty(penalty);
      return this;
    }

    /** {@code sampling.frequency_penalty}, in [-2, 2]. */
    public Builder frequencyPenalty(float penalty) {
      sampling().setFrequencyPenalty(penalty);
      return this;
    }

    /** {@code sampling.logit_bias}: token id -> bias in [-100, 100]; added to what is set already. */
    public Builder logitBias(Map<Integer, Float> bias) {
      request.setSampling(Requests.logitBias(sampling().build(), bias));
      return this;
    }

    /** {@code stopping.max_tokens}, at least 1. */
    public Builder maxTokens(int maxTokens) {
      stopping().setMaxTokens(unsigned(maxTokens, "maxTokens"));
      return this;
    }

    /** {@code stopping.min_tokens}. */
    public Builder minTokens(int minTokens) {
      stopping().setMinTokens(unsigned(minTokens, "minTokens"));
      return this;
    }

    /** Adds {@code stopping.stop} strings. */
    public Builder stop(String... stop) {
      stopping().addAllStop(List.of(stop));
      return this;
    }

    /** Adds {@code stopping.stop_token_ids}. */
    public Builder stopTokenIds(int... ids) {
      for (int id : ids) {
        stopping().addStopTokenIds(unsigned(id, "stop token id"));
      }
      return this;
    }

    /** {@code stopping.ignore_eos}: keep generating past end-of-sequence. */
    public Builder ignoreEos(boolean ignoreEos) {
      stopping().setIgnoreEos(ignoreEos);
      return this;
    }

    /** {@code output.token_ids}: whether deltas carry token ids (default true). */
    public Builder outputTokenIds(boolean tokenIds) {
      output().setTokenIds(tokenIds);
      return this;
    }

    /** {@code output.text}: whether deltas carry text (default true). */
    public Builder outputText(boolean text) {
      output().setText(text);
      return this;
    }

    /** {@code output.logprobs} on, with {@code output.top_logprobs} candidates per position (0 to 20). */
    public Builder logprobs(int topLogprobs) {
      output().setLogprobs(true).setTopLogprobs(unsigned(topLogprobs, "topLogprobs"));
      return this;
    }

    /**
     * {@code timeout}: the longest this generation may run; it then ends with
     * FINISH_REASON_DEADLINE and keeps its output (unlike {@link TokenwireClient#withTimeout}).
     */
    public Builder timeout(Duration timeout) {
      if (Objects.requireNonNull(timeout, "timeout").isNegative() || timeout.isZero()) {
        throw new IllegalArgumentException("timeout must be positive, not " + timeout);
      }
      request.setTimeout(com.google.protobuf.Duration.newBuilder()
          .setSeconds(timeout.getSeconds()).setNanos(timeout.getNano()));
      return this;
    }

    /** {@code speculative.method}: OFF, NGRAM or EAGLE3 (UNSPECIFIED: the server default). */
    public Builder speculative(SpeculativeOptions.SpeculativeMethod method) {
      request.getSpeculativeBuilder().setMethod(Objects.requireNonNull(method, "method"));
      return this;
    }

    /** {@code speculative.draft_length}: most draft tokens per step, 1 to 16. */
    public Builder draftLength(int draftLength) {
      request.getSpeculativeBuilder().setDraftLength(unsigned(draftLength, "draftLength"));
      return this;
    }

    /** {@code structured_output}: see {@link Requests#jsonSchema} and the other formats there. */
    public Builder structuredOutput(StructuredOutput format) {
      request.setStructuredOutput(Objects.requireNonNull(format, "format"));
      return this;
    }

    /** {@code n}: samples of the prompt (1 to GetModelInfo.max_samples; needs temperature > 0 when > 1). */
    public Builder n(int n) {
      request.setN(unsigned(n, "n"));
      return this;
    }

    public GenerateOptions build() {
      return new GenerateOptions(request.clone().build());
    }
  }
}
