package dev.tokenwire.client;

import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.List;

/** Concatenates the deltas of one generation into its {@link GenerationResult}. Not thread-safe. */
final class Accumulator {
  private final StringBuilder text = new StringBuilder();
  private final List<Integer> tokenIds = new ArrayList<>();
  private String requestId;

  Accumulator(String requestId) {
    this.requestId = requestId;
  }

  /** Adds one event; returns the result on {@code finished}, throws on {@code failed}, else null. */
  GenerationResult add(GenerationEvent event) {
    if (requestId.isEmpty()) {
      requestId = event.requestId();
    }
    if (event instanceof GenerationEvent.Delta delta) {
      text.append(delta.text());
      tokenIds.addAll(delta.tokenIds());
    } else if (event instanceof GenerationEvent.Finished finished) {
      return new GenerationResult(requestId, text.toString(), tokenIds, finished.finished());
    } else if (event instanceof GenerationEvent.Failed failed) {
      throw failure(failed);
    }
    return null;
  }

  static StatusRuntimeException failure(GenerationEvent.Failed failed) {
    return StatusProto.toStatusRuntimeException(failed.status());
  }
}
