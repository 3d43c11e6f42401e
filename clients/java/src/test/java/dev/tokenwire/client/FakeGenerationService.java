package dev.tokenwire.client;

import com.google.protobuf.Any;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import dev.tokenwire.v1.AbortRequest;
import dev.tokenwire.v1.AbortResponse;
import dev.tokenwire.v1.Delta;
import dev.tokenwire.v1.FinishReason;
import dev.tokenwire.v1.Finished;
import dev.tokenwire.v1.GenerateRequest;
import dev.tokenwire.v1.GenerateResponse;
import dev.tokenwire.v1.GenerationServiceGrpc;
import dev.tokenwire.v1.SessionRequest;
import dev.tokenwire.v1.SessionResponse;
import dev.tokenwire.v1.Started;
import dev.tokenwire.v1.Usage;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A scripted GenerationService. Generate streams "Hello", " world" and finishes with LENGTH; with
 * a structured output, '{"a": ' and '1}' and STRUCTURED_OUTPUT_COMPLETE; with n > 1, the deltas
 * "s<i>.<step>" of its samples interleaved (highest index first), then their finished events
 * (LENGTH, highest index first, prompt tokens in the first only); text "short" ends after one
 * sample's finished event, text "stray" sends a delta for sample n; text "truncated" (n = 1) sends
 * started and one delta, then ends without a finished event; text "fail-after-start" sends started,
 * then fails with {@link #failure}. While {@link #failuresLeft} is positive, a Generate or Abort
 * call, or a Session start, fails at once with {@link #failure} (and counts it down).
 * Session: each start gets started + delta "x" (one per sample, with n > 1); max_tokens 1 finishes
 * at once (LENGTH), text "bad" gets an INVALID_ARGUMENT error, anything else waits for its cancel
 * (CANCELLED); with n > 1, every sample but the last finishes at once (LENGTH) and the last waits
 * for its cancel; text "explode" fails the whole Session stream with INVALID_ARGUMENT and a
 * BadRequest detail. Every request is recorded in {@link #requests}.
 */
final class FakeGenerationService extends GenerationServiceGrpc.GenerationServiceImplBase {
  final List<GenerateRequest> requests = new CopyOnWriteArrayList<>();
  /** Abort calls, in order. */
  final List<AbortRequest> aborts = new CopyOnWriteArrayList<>();
  /** How many Generate and Abort calls still fail at once with {@link #failure}. */
  final AtomicInteger failuresLeft = new AtomicInteger();
  /** The error of the failing calls, and of the "fail-after-start" generation. */
  volatile com.google.rpc.Status failure = com.google.rpc.Status.newBuilder()
      .setCode(Code.UNAVAILABLE_VALUE).setMessage("try again").build();

  @Override
  public void generate(GenerateRequest request, StreamObserver<GenerateResponse> responses) {
    requests.add(request);
    if (failuresLeft.getAndUpdate(left -> Math.max(0, left - 1)) > 0) {
      responses.onError(StatusProto.toStatusRuntimeException(failure));
      return;
    }
    String id = request.getRequestId().isEmpty() ? "server-id" : request.getRequestId();
    responses.onNext(GenerateResponse.newBuilder().setRequestId(id)
        .setStarted(Started.newBuilder().setPromptTokens(3).setModel("fake")).build());
    if (request.getText().equals("fail-after-start")) {
      responses.onError(StatusProto.toStatusRuntimeException(failure));
      return;
    }
    if (request.getN() > 1) {
      generateSamples(request, id, responses);
      return;
    }
    if (request.getText().equals("truncated")) {
      responses.onNext(GenerateResponse.newBuilder().setRequestId(id)
          .setDelta(Delta.newBuilder().setText("Hel")).build());
      responses.onCompleted(); // no finished event
      return;
    }
    if (request.hasStructuredOutput()) {
      for (String text : new String[] {"{\"a\": ", "1}"}) {
        responses.onNext(GenerateResponse.newBuilder().setRequestId(id)
            .setDelta(Delta.newBuilder().setText(text)).build());
      }
      responses.onNext(GenerateResponse.newBuilder().setRequestId(id)
          .setFinished(finished(FinishReason.FINISH_REASON_STRUCTURED_OUTPUT_COMPLETE, 4)).build());
      responses.onCompleted();
      return;
    }
    for (String text : new String[] {"Hello", " world"}) {
      responses.onNext(GenerateResponse.newBuilder().setRequestId(id)
          .setDelta(Delta.newBuilder().setText(text).addTokenIds(text.length())).build());
    }
    responses.onNext(GenerateResponse.newBuilder().setRequestId(id)
        .setFinished(finished(FinishReason.FINISH_REASON_LENGTH, 2)).build());
    responses.onCompleted();
  }

  private static void generateSamples(GenerateRequest request, String id, StreamObserver<GenerateResponse> responses) {
    int n = request.getN();
    if (request.getText().equals("stray")) {
      responses.onNext(GenerateResponse.newBuilder().setRequestId(id)
          .setDelta(Delta.newBuilder().setText("?").setSampleIndex(n)).build());
    }
    for (int step = 0; step < 2; step++) {
      for (int i = n - 1; i >= 0; i--) {
        responses.onNext(GenerateResponse.newBuilder().setRequestId(id)
            .setDelta(Delta.newBuilder().setText("s" + i + "." + step).addTokenIds(100 * i + step).setSampleIndex(i))
            .build());
      }
    }
    int last = request.getText().equals("short") ? n - 1 : 0;
    for (int i = n - 1; i >= last; i--) {
      Finished finished = finished(FinishReason.FINISH_REASON_LENGTH, 2).toBuilder()
          .setSampleIndex(i)
          .setUsage(Usage.newBuilder().setCompletionTokens(2).setPromptTokens(i == n - 1 ? 3 : 0))
          .build();
      responses.onNext(GenerateResponse.newBuilder().setRequestId(id).setFinished(finished).build());
    }
    responses.onCompleted();
  }

  @Override
  public void abort(AbortRequest request, StreamObserver<AbortResponse> responses) {
    aborts.add(request);
    if (failuresLeft.getAndUpdate(left -> Math.max(0, left - 1)) > 0) {
      responses.onError(StatusProto.toStatusRuntimeException(failure));
      return;
    }
    responses.onNext(AbortResponse.newBuilder().setCancelled(request.getRequestId().equals("running")).build());
    responses.onCompleted();
  }

  @Override
  public StreamObserver<SessionRequest> session(StreamObserver<SessionResponse> responses) {
    return new StreamObserver<>() {
      /** Generations waiting for their cancel, and which of their samples is running. */
      private final Map<String, Integer> running = new HashMap<>();
      private boolean halfClosed;

      @Override
      public void onNext(SessionRequest request) {
        if (request.hasCancel()) {
          String id = request.getCancel().getRequestId();
          Integer sample = running.remove(id);
          if (sample != null) {
            responses.onNext(SessionResponse.newBuilder().setRequestId(id)
                .setFinished(finished(FinishReason.FINISH_REASON_CANCELLED, 1).toBuilder().setSampleIndex(sample))
                .build());
            maybeEnd();
          }
          return;
        }
        GenerateRequest start = request.getStart();
        requests.add(start);
        String id = start.getRequestId();
        if (failuresLeft.getAndUpdate(left -> Math.max(0, left - 1)) > 0) {
          responses.onNext(SessionResponse.newBuilder().setRequestId(id).setError(failure).build());
          return;
        }
        if (start.getText().equals("explode")) {
          responses.onError(StatusProto.toStatusRuntimeException(com.google.rpc.Status.newBuilder()
              .setCode(Code.INVALID_ARGUMENT_VALUE).setMessage("the whole stream is bad")
              .addDetails(Any.pack(BadRequest.newBuilder()
                  .addFieldViolations(BadRequest.FieldViolation.newBuilder()
                      .setField("start.text").setDescription("explodes"))
                  .build()))
              .build()));
          return;
        }
        if (start.getText().equals("bad")) {
          responses.onNext(SessionResponse.newBuilder().setRequestId(id)
              .setError(com.google.rpc.Status.newBuilder()
                  .setCode(Code.INVALID_ARGUMENT_VALUE).setMessage("bad prompt"))
              .build());
          return;
        }
        responses.onNext(SessionResponse.newBuilder().setRequestId(id)
            .setStarted(Started.newBuilder().setPromptTokens(1).setModel("fake")).build());
        int n = Math.max(start.getN(), 1);
        for (int i = 0; i < n; i++) {
          responses.onNext(SessionResponse.newBuilder().setRequestId(id)
              .setDelta(Delta.newBuilder().setText("x" + (n > 1 ? i : "")).addTokenIds(7).setSampleIndex(i)).build());
        }
        if (n > 1) {
          for (int i = 0; i < n - 1; i++) {
            responses.onNext(SessionResponse.newBuilder().setRequestId(id)
                .setFinished(finished(FinishReason.FINISH_REASON_LENGTH, 1).toBuilder().setSampleIndex(i))
                .build());
          }
          running.put(id, n - 1);
        } else if (start.getStopping().getMaxTokens() == 1) {
          responses.onNext(SessionResponse.newBuilder().setRequestId(id)
              .setFinished(finished(FinishReason.FINISH_REASON_LENGTH, 1)).build());
        } else {
          running.put(id, 0);
        }
      }

      @Override
      public void onError(Throwable error) {
        running.clear();
      }

      @Override
      public void onCompleted() {
        halfClosed = true;
        maybeEnd();
      }

      private void maybeEnd() {
        if (halfClosed && running.isEmpty()) {
          responses.onCompleted();
        }
      }
    };
  }

  private static Finished finished(FinishReason reason, int completionTokens) {
    return Finished.newBuilder().setReason(reason)
        .setUsage(Usage.newBuilder().setCompletionTokens(completionTokens)).build();
  }
}
