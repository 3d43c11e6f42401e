package dev.tokenwire.client;

import dev.tokenwire.v1.FinishReason;
import dev.tokenwire.v1.Finished;
import java.util.List;

/**
 * A generation that ran to its {@code finished} event: the whole output text and token ids, and
 * the final event (reason, usage, timing).
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
}
