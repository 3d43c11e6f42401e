package dev.tokenwire.client;

import com.google.protobuf.Any;
import com.google.protobuf.Message;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import dev.tokenwire.v1.ChatMessage;
import dev.tokenwire.v1.DetokenizeRequest;
import dev.tokenwire.v1.DetokenizeResponse;
import dev.tokenwire.v1.ModelServiceGrpc;
import dev.tokenwire.v1.TokenizeRequest;
import dev.tokenwire.v1.TokenizeResponse;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A scripted ModelService tokenizer whose tokens are characters: Tokenize gives a text's code
 * points; for a chat it renders {@code <|role|>content\n} per message plus {@code <|assistant|>}
 * and gives the rendered prompt's code points, refusing an empty chat with INVALID_ARGUMENT (a
 * BadRequest on "chat.messages"). Detokenize turns ids back into characters, id {@value #SPECIAL}
 * being the special token {@value #SPECIAL_TEXT}, left out unless keep_special_tokens. While
 * {@link #failuresLeft} is positive, a call fails at once with {@link #failure} (and counts it
 * down). Every request is recorded in {@link #requests}, with the call's deadline, if any, in
 * {@link #deadlines}.
 */
final class FakeModelService extends ModelServiceGrpc.ModelServiceImplBase {
  static final int SPECIAL = 0;
  static final String SPECIAL_TEXT = "<s>";

  /** Tokenize and Detokenize requests, in order. */
  final List<Message> requests = new CopyOnWriteArrayList<>();
  /** Each call's deadline, in the order of {@link #requests}; empty for a call without one. */
  final List<Optional<Deadline>> deadlines = new CopyOnWriteArrayList<>();
  /** How many calls still fail at once with {@link #failure}. */
  final AtomicInteger failuresLeft = new AtomicInteger();
  /** The error of the failing calls. */
  volatile com.google.rpc.Status failure = com.google.rpc.Status.newBuilder()
      .setCode(Code.UNAVAILABLE_VALUE).setMessage("try again").build();

  @Override
  public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> responses) {
    if (failed(request, responses)) {
      return;
    }
    TokenizeResponse.Builder response = TokenizeResponse.newBuilder();
    if (request.hasChat()) {
      if (request.getChat().getMessagesCount() == 0) {
        responses.onError(StatusProto.toStatusRuntimeException(com.google.rpc.Status.newBuilder()
            .setCode(Code.INVALID_ARGUMENT_VALUE).setMessage("invalid request")
            .addDetails(Any.pack(BadRequest.newBuilder()
                .addFieldViolations(BadRequest.FieldViolation.newBuilder()
                    .setField("chat.messages").setDescription("must not be empty"))
                .build()))
            .build()));
        return;
      }
      StringBuilder rendered = new StringBuilder();
      for (ChatMessage message : request.getChat().getMessagesList()) {
        rendered.append("<|").append(message.getRole()).append("|>").append(message.getContent()).append('\n');
      }
      rendered.append("<|assistant|>");
      response.setRenderedPrompt(rendered.toString());
      rendered.codePoints().forEach(response::addTokenIds);
    } else {
      request.getText().codePoints().forEach(response::addTokenIds);
    }
    responses.onNext(response.build());
    responses.onCompleted();
  }

  @Override
  public void detokenize(DetokenizeRequest request, StreamObserver<DetokenizeResponse> responses) {
    if (failed(request, responses)) {
      return;
    }
    StringBuilder text = new StringBuilder();
    for (int id : request.getTokenIdsList()) {
      if (id != SPECIAL) {
        text.appendCodePoint(id);
      } else if (request.getKeepSpecialTokens()) {
        text.append(SPECIAL_TEXT);
      }
    }
    responses.onNext(DetokenizeResponse.newBuilder().setText(text.toString()).build());
    responses.onCompleted();
  }

  /** Records the call, and fails it while {@link #failuresLeft} is positive. */
  private boolean failed(Message request, StreamObserver<?> responses) {
    requests.add(request);
    deadlines.add(Optional.ofNullable(Context.current().getDeadline()));
    if (failuresLeft.getAndUpdate(left -> Math.max(0, left - 1)) > 0) {
      responses.onError(StatusProto.toStatusRuntimeException(failure));
      return true;
    }
    return false;
  }
}
