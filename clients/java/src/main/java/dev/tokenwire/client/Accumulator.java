package dev.tokenwire.client;

import dev.tokenwire.v1.GenerateRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Concatenates the deltas of one generation, per sample, into its {@link GenerationResult}s. The
 * generation has ended when every one of its {@code n} samples has had its {@code finished} event.
 * Not thread-safe.
 */
final class Accumulator {
  private final long samples;
  private final Map<Integer, Sample> bySample = new TreeMap<>();
  private String requestId;
  private long finishedCount;
  private List<GenerationResult> results;

  private static final class Sample {
    final StringBuilder text = new StringBuilder();
    final List<Integer> tokenIds = new ArrayList<>();
    dev.tokenwire.v1.Finished finished;
  }

  Accumulator(String requestId, long samples) {
    if (samples < 1) {
      throw new IllegalArgumentException("samples must be at least 1, not " + samples);
    }
    this.requestId = requestId;
    this.samples = samples;
  }

  /** The number of samples {@code request} asks for: its {@code n}, or 1 when absent or 0. */
  static long samples(GenerateRequest request) {
    long n = Integer.toUnsignedLong(request.getN());
    return n == 0 ? 1 : n;
  }

  long samples() {
    return samples;
  }

  long finishedCount() {
    return finishedCount;
  }

  /** The results, one per sample in sample-index order, once every sample has finished; else null. */
  List<GenerationResult> results() {
    return results;
  }

  /**
   * Adds one event; returns the results, one per sample in sample-index order, when it was the
   * last sample's {@code finished}; else null.
   *
   * @throws StatusRuntimeException for a {@code failed} event (its status), or INTERNAL for an
   *     event the protocol does not allow (a sample index out of range, a second finished event
   *     for one sample, an event after the end)
   */
  List<GenerationResult> add(GenerationEvent event) {
    if (requestId.isEmpty()) {
      requestId = event.requestId();
    }
    if (event instanceof GenerationEvent.Failed failed) {
      throw failure(failed);
    }
    if (results != null) {
      throw protocolError("an event after the last sample's finished event");
    }
    if (event instanceof GenerationEvent.Delta delta) {
      Sample sample = sample(delta.sampleIndex());
      if (sample.finished != null) {
        throw protocolError("a delta for sample " + delta.sampleIndex() + " after its finished event");
      }
      sample.text.append(delta.text());
      sample.tokenIds.addAll(delta.tokenIds());
    } else if (event instanceof GenerationEvent.Finished finished) {
      Sample sample = sample(finished.sampleIndex());
      if (sample.finished != null) {
        throw protocolError("a second finished event for sample " + finished.sampleIndex());
      }
      sample.finished = finished.finished();
      if (++finishedCount == samples) {
        List<GenerationResult> done = new ArrayList<>(bySample.size());
        for (Sample s : bySample.values()) {
          done.add(new GenerationResult(requestId, s.text.toString(), s.tokenIds, s.finished));
        }
        results = List.copyOf(done);
        return results;
      }
    }
    return null;
  }

  private Sample sample(int index) {
    if (Integer.toUnsignedLong(index) >= samples) {
      throw protocolError("sample index " + Integer.toUnsignedString(index) + " of a request with n = " + samples);
    }
    return bySample.computeIfAbsent(index, i -> new Sample());
  }

  /**
   * The error for a stream that ended (normally, at the gRPC level) before every sample's
   * {@code finished} event: INTERNAL, as the server broke the streaming contract.
   */
  StatusRuntimeException truncated(String stream) {
    return Status.INTERNAL
        .withDescription(samples == 1
            ? "the " + stream + " stream ended without a finished event"
            : "the " + stream + " stream ended after " + finishedCount + " finished events of " + samples + " samples")
        .asRuntimeException();
  }

  private StatusRuntimeException protocolError(String what) {
    return Status.INTERNAL
        .withDescription("generation " + requestId + ": the server sent " + what)
        .asRuntimeException();
  }

  static StatusRuntimeException failure(GenerationEvent.Failed failed) {
    return StatusProto.toStatusRuntimeException(failed.status());
  }
}
