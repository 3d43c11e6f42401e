package dev.tokenwire.client;

import dev.tokenwire.v1.FinishReason;
import dev.tokenwire.v1.GenerateResponse;
import dev.tokenwire.v1.SessionResponse;
import java.util.List;

/**
 * One event of a generation, from a {@code Generate} stream or a {@code Session}: exactly one
 * {@link Started}, any number of {@link Delta}, then one {@link Finished} or (sessions only) one
 * {@link Failed}.
 */
public sealed interface GenerationEvent {

  /** The generation this event belongs to. */
  String requestId();

  /** Whether this is the generation's last event. */
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
  }

  /** The generation ended: why, with usage and timing. */
  record Finished(String requestId, dev.tokenwire.v1.Finished finished) implements GenerationEvent {
    public FinishReason reason() {
      return finished.getReason();
    }

    public int completionTokens() {
      return finished.getUsage().getCompletionTokens();
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
