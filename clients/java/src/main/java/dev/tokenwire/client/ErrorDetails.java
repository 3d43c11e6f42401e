package dev.tokenwire.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * The typed details of a failed call or generation, decoded from its {@code google.rpc.Status}:
 * the field violations of a {@code google.rpc.BadRequest} (INVALID_ARGUMENT), the delay of a
 * {@code google.rpc.RetryInfo} (RESOURCE_EXHAUSTED, UNAVAILABLE) and the reason of a
 * {@code google.rpc.ErrorInfo} (a machine-readable cause such as {@code ENGINE_QUEUE_FULL}).
 *
 * <pre>{@code
 * try {
 *   client.complete(request);
 * } catch (StatusRuntimeException e) {
 *   ErrorDetails details = ErrorDetails.of(e);
 *   for (BadRequest.FieldViolation v : details.fieldViolations()) {
 *     System.err.println(v.getField() + ": " + v.getDescription());
 *   }
 *   details.retryDelay().ifPresent(delay -> ...);
 *   details.reason().ifPresent(reason -> ...);
 * }
 * }</pre>
 */
public final class ErrorDetails {
  private final com.google.rpc.Status status;
  private final List<BadRequest.FieldViolation> fieldViolations;
  private final Duration retryDelay;
  private final ErrorInfo errorInfo;

  private ErrorDetails(com.google.rpc.Status status) {
    this.status = status;
    List<BadRequest.FieldViolation> violations = new ArrayList<>();
    Duration delay = null;
    ErrorInfo info = null;
    for (Any detail : status.getDetailsList()) {
      try {
        if (detail.is(BadRequest.class)) {
          violations.addAll(detail.unpack(BadRequest.class).getFieldViolationsList());
        } else if (detail.is(RetryInfo.class)) {
          com.google.protobuf.Duration d = detail.unpack(RetryInfo.class).getRetryDelay();
          delay = Duration.ofSeconds(d.getSeconds(), d.getNanos());
        } else if (detail.is(ErrorInfo.class) && info == null) {
          info = detail.unpack(ErrorInfo.class);
        }
      } catch (InvalidProtocolBufferException e) {
        // A malformed detail is skipped; the status itself stays readable.
      }
    }
    this.fieldViolations = List.copyOf(violations);
    this.retryDelay = delay;
    this.errorInfo = info;
  }

  /** The details of {@code status} (a Session {@code error}, {@link GenerationEvent.Failed#status()}). */
  public static ErrorDetails of(com.google.rpc.Status status) {
    return new ErrorDetails(Objects.requireNonNull(status, "status"));
  }

  /**
   * The details of a failure: a {@code StatusRuntimeException} or {@code StatusException} (or an
   * {@code ExecutionException} / {@code CompletionException} around one, as a
   * {@code CompletableFuture} of this client completes). Anything else is UNKNOWN without details.
   */
  public static ErrorDetails of(Throwable error) {
    Throwable cause = Objects.requireNonNull(error, "error");
    while ((cause instanceof ExecutionException || cause instanceof CompletionException) && cause.getCause() != null) {
      cause = cause.getCause();
    }
    com.google.rpc.Status full = StatusProto.fromThrowable(cause);
    if (full != null) {
      return new ErrorDetails(full);
    }
    Status status = Status.fromThrowable(cause);
    return new ErrorDetails(com.google.rpc.Status.newBuilder()
        .setCode(status.getCode().value())
        .setMessage(status.getDescription() == null ? "" : status.getDescription())
        .build());
  }

  /** The gRPC status code. */
  public Status.Code code() {
    return Status.fromCodeValue(status.getCode()).getCode();
  }

  /** The status message. */
  public String message() {
    return status.getMessage();
  }

  /** The whole {@code google.rpc.Status}, every detail included. */
  public com.google.rpc.Status status() {
    return status;
  }

  /** The {@code google.rpc.BadRequest} field violations (INVALID_ARGUMENT): each bad field, and why. */
  public List<BadRequest.FieldViolation> fieldViolations() {
    return fieldViolations;
  }

  /** How long the server asked to wait before retrying ({@code google.rpc.RetryInfo}), if it said. */
  public Optional<Duration> retryDelay() {
    return Optional.ofNullable(retryDelay);
  }

  /** The {@code google.rpc.ErrorInfo} (reason, domain, metadata), if the server sent one. */
  public Optional<ErrorInfo> errorInfo() {
    return Optional.ofNullable(errorInfo);
  }

  /** The {@code google.rpc.ErrorInfo} reason, e.g. {@code ENGINE_QUEUE_FULL} or {@code READER_STALLED}. */
  public Optional<String> reason() {
    return errorInfo().map(ErrorInfo::getReason);
  }

  @Override
  public String toString() {
    return code() + ": " + message();
  }
}
