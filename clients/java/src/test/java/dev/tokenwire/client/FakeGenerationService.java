package dev.tokenwire.client;

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
import io.grpc.stub.StreamObserver;
import java.util.HashSet;
import java.util.Set;

/**
 * A scripted GenerationService. Generate streams "Hello", " world" and finishes with LENGTH.
 * Session: each start gets started + delta "x"; max_tokens 1 finishes at once (LENGTH), text "bad"
 * gets an INVALID_ARGUMENT error, anything else waits for its cancel (CANCELLED).
 */
final class FakeGenerationService extends GenerationServiceGrpc.GenerationServiceImplBase {

  @Override
  public void generate(GenerateRequest request, StreamObserver<GenerateResponse> responses) {
    String id = request.getRequestId().isEmpty() ? "server-id" : request.getRequestId();
    responses.onNext(GenerateResponse.newBuilder().setRequestId(id)
        .setStarted(Started.newBuilder().setPromptTokens(3).setModel("fake")).build());
    for (String text : new String[] {"Hello", " world"}) {
      responses.onNext(GenerateResponse.newBuilder().setRequestId(id)
          .setDelta(Delta.newBuilder().setText(text).addTokenIds(text.length())).build());
    }
    responses.onNext(GenerateResponse.newBuilder().setRequestId(id)
        .setFinished(finished(FinishReason.FINISH_REASON_LENGTH, 2)).build());
    responses.onCompleted();
  }

  @Override
  public void abort(AbortRequest request, StreamObserver<AbortResponse> responses) {
    responses.onNext(AbortResponse.newBuilder().setCancelled(request.getRequestId().equals("running")).build());
    responses.onCompleted();
  }

  @Override
  public StreamObserver<SessionRequest> session(StreamObserver<SessionResponse> responses) {
    return new StreamObserver<>() {
      private final Set<String> running = new HashSet<>();
      private boolean halfClosed;

      @Override
      public void onNext(SessionRequest request) {
        if (request.hasCancel()) {
          String id = request.getCancel().getRequestId();
          if (running.remove(id)) {
            responses.onNext(SessionResponse.newBuilder().setRequestId(id)
                .setFinished(finished(FinishReason.FINISH_REASON_CANCELLED, 1)).build());
            maybeEnd();
          }
          return;
        }
        GenerateRequest start = request.getStart();
        String id = start.getRequestId();
        if (start.getText().equals("bad")) {
          responses.onNext(SessionResponse.newBuilder().setRequestId(id)
              .setError(com.google.rpc.Status.newBuilder()
                  .setCode(Code.INVALID_ARGUMENT_VALUE).setMessage("bad prompt"))
              .build());
          return;
        }
        responses.onNext(SessionResponse.newBuilder().setRequestId(id)
            .setStarted(Started.newBuilder().setPromptTokens(1).setModel("fake")).build());
        responses.onNext(SessionResponse.newBuilder().setRequestId(id)
            .setDelta(Delta.newBuilder().setText("x").addTokenIds(7)).build());
        if (start.getStopping().getMaxTokens() == 1) {
          responses.onNext(SessionResponse.newBuilder().setRequestId(id)
              .setFinished(finished(FinishReason.FINISH_REASON_LENGTH, 1)).build());
        } else {
          running.add(id);
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
