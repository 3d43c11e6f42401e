package dev.tokenwire.client;

import dev.tokenwire.v1.FinishReason;
import dev.tokenwire.v1.Finished;
import java.util.List;

/**
 * A generation (or, for a request with {@code n} > 1, one of its samples) that ran to its
 * {@code finished} event: the whole output text and token ids, and the final event (reason,
 * usage, timing, sample index).
 */
public record GenerationResult(String requestId, String text, List<Integer> tokenIds, Finished finished) {

  public GenerationResult {
    tokenIds = List.copyOf(tokenIds);
  }

  public FinishReason reason() {
    return finished.getReason();
  }

  public int completionTokens() {
    return finished.getUsage().getCompletionTokens();
  }

  /** Which sample this is: 0 to n - 1 (always 0 when n is 1). */
  public int sampleIndex() {
    return finished.getSampleIndex();
  }

  /**
   * Whether the output is complete: the model ended it ({@code FINISH_REASON_END_OF_SEQUENCE}) or
   * its structured output format allowed nothing more
   * ({@code FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE}). Any other reason (max_tokens, a stop
   * string or token, cancellation, the request's timeout) may have cut it short: a structured
   * output may then not parse.
   */
  public boolean isComplete() {
    return switch (reason()) {
      case FINISH_REASON_END_OF_SEQUENCE, FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE -> true;
      case FINISH_REASON_LENGTH, FINISH_REASON_STOP_STRING, FINISH_REASON_STOP_TOKEN,
          FINISH_REASON_CANCELLED, FINISH_REASON_DEADLINE, FINISH_REASON_UNSPECIFIED, UNRECOGNIZED -> false;
    };
  }
}
