package dev.tokenwire.client;

import dev.tokenwire.v1.FinishReason;
import dev.tokenwire.v1.GenerateResponse;
import dev.tokenwire.v1.SessionResponse;
import java.util.List;

/**
 * One event of a generation, from a {@code Generate} stream or a {@code Session}: exactly one
 * {@link Started}, any number of {@link Delta}, then one {@link Finished} per sample (one unless
 * the request set {@code n} > 1) or (sessions only) one {@link Failed}. With {@code n} > 1 the
 * samples' deltas and finished events are interleaved; each carries its {@code sampleIndex()}.
 */
public sealed interface GenerationEvent {

  /** The generation this event belongs to. */
  String requestId();

  /**
   * Whether this event ends its sample or the whole generation: a {@link Finished} (the last event
   * of its sample, and of the generation when {@code n} is 1) or a {@link Failed}. With {@code n}
   * > 1 the generation ends after the last sample's {@link Finished}; {@link GenerationStream} and
   * {@link SessionGeneration} count them for you.
   */
  default boolean isFinal() {
    return this instanceof Finished || this instanceof Failed;
  }

  /** The request was accepted. */
  record Started(String requestId, dev.tokenwire.v1.Started started) implements GenerationEvent {
    public int promptTokens() {
      return started.getPromptTokens();
    }

    public String model() {
      return started.getModel();
    }
  }

  /** New output since the previous event (never cumulative). */
  record Delta(String requestId, dev.tokenwire.v1.Delta delta) implements GenerationEvent {
    public String text() {
      return delta.getText();
    }

    public List<Integer> tokenIds() {
      return delta.getTokenIdsList();
    }

    /** The sample this output belongs to: 0 to n - 1 (always 0 when n is 1). */
    public int sampleIndex() {
      return delta.getSampleIndex();
    }
  }

  /**
   * A sample ended (the generation, when n is 1): why, with usage and timing. With n > 1 the
   * prompt is counted once, in the first finished event to arrive ({@code usage.prompt_tokens} is
   * 0 in the others).
   */
  record Finished(String requestId, dev.tokenwire.v1.Finished finished) implements GenerationEvent {
    public FinishReason reason() {
      return finished.getReason();
    }

    public int completionTokens() {
      return finished.getUsage().getCompletionTokens();
    }

    /** The sample that ended: 0 to n - 1 (always 0 when n is 1). */
    public int sampleIndex() {
      return finished.getSampleIndex();
    }
  }

  /**
   * The generation failed (a Session's {@code error} event, or the Session stream itself failing
   * while the generation was in flight). {@code status} carries the code, message and details
   * (for example google.rpc.BadRequest).
   */
  record Failed(String requestId, com.google.rpc.Status status) implements GenerationEvent {
    public io.grpc.Status.Code code() {
      return io.grpc.Status.fromCodeValue(status.getCode()).getCode();
    }

    /** The status's details decoded: field violations, retry delay, ErrorInfo reason. */
    public ErrorDetails details() {
      return ErrorDetails.of(status);
    }
  }

  /** Maps one event of a Generate stream. */
  static GenerationEvent of(GenerateResponse response) {
    String id = response.getRequestId();
    return switch (response.getEventCase()) {
      case STARTED -> new Started(id, response.getStarted());
      case DELTA -> new Delta(id, response.getDelta());
      case FINISHED -> new Finished(id, response.getFinished());
      case EVENT_NOT_SET -> throw new IllegalArgumentException("GenerateResponse without an event");
    };
  }

  /** Maps one event of a Session stream. */
  static GenerationEvent of(SessionResponse response) {
    String id = response.getRequestId();
    return switch (response.getEventCase()) {
      case STARTED -> new Started(id, response.getStarted());
      case DELTA -> new Delta(id, response.getDelta());
      case FINISHED -> new Finished(id, response.getFinished());
      case ERROR -> new Failed(id, response.getError());
      case EVENT_NOT_SET -> throw new IllegalArgumentException("SessionResponse without an event");
    };
  }
}
