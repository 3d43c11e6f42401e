package dev.tokenwire.client;

import dev.tokenwire.v1.AbortRequest;
import dev.tokenwire.v1.Chat;
import dev.tokenwire.v1.ChatMessage;
import dev.tokenwire.v1.DetokenizeRequest;
import dev.tokenwire.v1.GenerateRequest;
import dev.tokenwire.v1.GenerateResponse;
import dev.tokenwire.v1.GenerationServiceGrpc;
import dev.tokenwire.v1.GetLoadRequest;
import dev.tokenwire.v1.GetLoadResponse;
import dev.tokenwire.v1.GetModelInfoRequest;
import dev.tokenwire.v1.GetModelInfoResponse;
import dev.tokenwire.v1.ModelServiceGrpc;
import dev.tokenwire.v1.TokenizeRequest;
import dev.tokenwire.v1.TokenizeResponse;
import io.grpc.Channel;
import io.grpc.ClientInterceptors;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.AbstractStub;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * A tokenwire.v1 client: streaming generation, sessions, abort and the model service, over one
 * gRPC channel. Thread-safe; share one per server.
 *
 * <pre>{@code
 * try (TokenwireClient client = TokenwireClient.connect("127.0.0.1:50051")) {
 *   GenerationResult result = client
 *       .generate(Requests.chat("What is the capital of France?").setStopping(Requests.maxTokens(32)).build())
 *       .collect(System.out::print);
 * }
 * }</pre>
 */
public final class TokenwireClient implements AutoCloseable {
  /** Where {@link #fromEnvironment()} connects when TOKENWIRE_TARGET is not set. */
  public static final String DEFAULT_TARGET = "127.0.0.1:50051";

  /** Waits between attempts (tests replace it to record the waits). */
  interface Sleeper {
    void sleep(Duration duration) throws InterruptedException;
  }

  private static final Sleeper THREAD_SLEEP = duration -> TimeUnit.NANOSECONDS.sleep(duration.toNanos());

  private final Channel channel;
  private final ManagedChannel owned;
  private final Duration timeout;
  private final RetryPolicy retry;
  private final Sleeper sleeper;

  private TokenwireClient(Channel channel, ManagedChannel owned, Duration timeout, RetryPolicy retry, Sleeper sleeper) {
    this.channel = Objects.requireNonNull(channel, "channel");
    this.owned = owned;
    this.timeout = timeout;
    this.retry = Objects.requireNonNull(retry, "retry");
    this.sleeper = sleeper;
  }

  /** A client on a channel the caller owns (TLS, interceptors, ...); {@link #close()} leaves it open. */
  public static TokenwireClient of(Channel channel) {
    return new TokenwireClient(channel, null, null, RetryPolicy.defaults(), THREAD_SLEEP);
  }

  /** Connects without TLS to {@code target} ("host:port" or any gRPC target URI). */
  public static TokenwireClient connect(String target) {
    return connect(target, ConnectOptions.plaintext());
  }

  /**
   * Connects to {@code target} ("host:port" or any gRPC target URI) with TLS, a client
   * certificate and a bearer token as {@code options} say. The files are read now.
   *
   * @throws UncheckedIOException when a file cannot be read
   * @throws IllegalArgumentException when a file does not hold what it should (a CA bundle
   *     without a certificate, a key that is not PKCS#8 PEM, ...)
   */
  public static TokenwireClient connect(String target, ConnectOptions options) {
    ManagedChannelBuilder<?> builder = Grpc.newChannelBuilder(target, Credentials.of(options));
    options.bearerToken().ifPresent(token -> builder.intercept(token));
    ManagedChannel channel = builder.build();
    return new TokenwireClient(channel, channel, null, RetryPolicy.defaults(), THREAD_SLEEP);
  }

  /**
   * Connects to $TOKENWIRE_TARGET (or {@value #DEFAULT_TARGET}) with the TLS and token settings
   * of {@link ConnectOptions#fromEnvironment()}: TOKENWIRE_TLS_CA, TOKENWIRE_CLIENT_CERT,
   * TOKENWIRE_CLIENT_KEY, TOKENWIRE_TOKEN. Plaintext when none is set.
   */
  public static TokenwireClient fromEnvironment() {
    String target = System.getenv("TOKENWIRE_TARGET");
    return connect(target == null || target.isBlank() ? DEFAULT_TARGET : target, ConnectOptions.fromEnvironment());
  }

  /**
   * The same client (same channel) with a gRPC deadline on every call it starts: {@code timeout}
   * from the start of each call. For a Generate or Session call the deadline bounds the whole
   * stream and fails it with DEADLINE_EXCEEDED; to keep partial output, set
   * {@code GenerateRequest.timeout} instead. Closing the returned client does not close the channel.
   */
  public TokenwireClient withTimeout(Duration timeout) {
    return new TokenwireClient(channel, null, Objects.requireNonNull(timeout, "timeout"), retry, sleeper);
  }

  /**
   * The same client (same channel) with another retry policy for the calls it starts, e.g.
   * {@code client.withRetryPolicy(RetryPolicy.disabled()).generate(request)} for one call. The
   * default is {@link RetryPolicy#defaults()}: UNAVAILABLE and RESOURCE_EXHAUSTED are retried
   * before the first event only, honouring the server's RetryInfo, within the call's deadline.
   * Closing the returned client does not close the channel.
   */
  public TokenwireClient withRetryPolicy(RetryPolicy retry) {
    return new TokenwireClient(channel, null, timeout, Objects.requireNonNull(retry, "retry"), sleeper);
  }

  /** The retry policy of the calls this client starts. */
  public RetryPolicy retryPolicy() {
    return retry;
  }

  TokenwireClient withSleeper(Sleeper sleeper) {
    return new TokenwireClient(channel, null, timeout, retry, sleeper);
  }

  /**
   * The same client (same connection) with one more ASCII header on every call it starts, e.g. the
   * caller's W3C {@code traceparent}, which tokenwire's span for the call then continues (an
   * OpenTelemetry app would use its gRPC instrumentation instead). Closing the returned client does
   * not close the channel.
   *
   * @throws IllegalArgumentException for a key gRPC does not allow
   */
  public TokenwireClient withMetadata(String key, String value) {
    Metadata headers = new Metadata();
    headers.put(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER), Objects.requireNonNull(value, "value"));
    Channel intercepted = ClientInterceptors.intercept(channel, MetadataUtils.newAttachHeadersInterceptor(headers));
    return new TokenwireClient(intercepted, null, timeout, retry, sleeper);
  }

  /**
   * Starts one generation and returns its event stream. Close the stream (try-with-resources)
   * to cancel the generation early. A call failing with a retryable code before its first event
   * is retried per the {@linkplain #withRetryPolicy retry policy}, within the deadline.
   */
  public GenerationStream generate(GenerateRequest request) {
    Context.CancellableContext context = Context.current().withCancellation();
    Deadline deadline = newDeadline();
    GenerationServiceGrpc.GenerationServiceBlockingStub stub =
        withDeadline(GenerationServiceGrpc.newBlockingStub(channel), deadline);
    Supplier<Iterator<GenerateResponse>> start = () -> {
      Context previous = context.attach();
      try {
        return stub.generate(request);
      } finally {
        context.detach(previous);
      }
    };
    return new GenerationStream(context, start, (attempt, error) -> backoff(attempt, error, deadline),
        Accumulator.samples(request));
  }

  /**
   * Runs one generation to its end and returns the whole output. For a request with one sample
   * only; see {@link #completeSamples}.
   *
   * @throws IllegalArgumentException when the request asks for {@code n} > 1 samples (nothing is
   *     sent)
   */
  public GenerationResult complete(GenerateRequest request) {
    if (Accumulator.samples(request) != 1) {
      throw new IllegalArgumentException("the request asks for n = " + Accumulator.samples(request)
          + " samples: use completeSamples, which returns one result per sample");
    }
    return generate(request).collect(text -> {});
  }

  /**
   * Runs one generation of {@code n} samples (the request's {@code n}; 1 when absent) to its end
   * and returns one result per sample, in sample-index order.
   */
  public List<GenerationResult> completeSamples(GenerateRequest request) {
    return generate(request).collectSamples((text, sampleIndex) -> {});
  }

  /**
   * Starts one generation without blocking: every event goes to {@code observer} as it arrives
   * (on a gRPC thread), then {@code onCompleted} after the last sample's {@code finished} event,
   * or {@code onError} with a {@link io.grpc.StatusRuntimeException}. Retried like
   * {@link #generate}. {@link GenerationCall#cancel()} cancels it.
   */
  public GenerationCall generateAsync(GenerateRequest request, StreamObserver<GenerationEvent> observer) {
    Deadline deadline = newDeadline();
    GenerationCall call = new GenerationCall(withDeadline(GenerationServiceGrpc.newStub(channel), deadline),
        request, Objects.requireNonNull(observer, "observer"), this, deadline);
    call.start();
    return call;
  }

  /**
   * Runs one generation without blocking; the future completes with its whole output, or
   * exceptionally with a {@link io.grpc.StatusRuntimeException}. Cancelling the future cancels
   * the generation. For a request with one sample only; see {@link #completeSamplesAsync}.
   *
   * @throws IllegalArgumentException when the request asks for {@code n} > 1 samples (nothing is
   *     sent)
   */
  public CompletableFuture<GenerationResult> completeAsync(GenerateRequest request) {
    if (Accumulator.samples(request) != 1) {
      throw new IllegalArgumentException("the request asks for n = " + Accumulator.samples(request)
          + " samples: use completeSamplesAsync, which gives one result per sample");
    }
    return completeSamplesAsync(request).thenApply(results -> results.get(0));
  }

  /**
   * Runs one generation of {@code n} samples without blocking; the future completes with one
   * result per sample, in sample-index order. Cancelling the future cancels the generation.
   */
  public CompletableFuture<List<GenerationResult>> completeSamplesAsync(GenerateRequest request) {
    CompletableFuture<List<GenerationResult>> result = new CompletableFuture<>();
    GenerationCall call = generateAsync(request, new StreamObserver<>() {
      @Override
      public void onNext(GenerationEvent event) {}

      @Override
      public void onError(Throwable error) {
        result.completeExceptionally(error);
      }

      @Override
      public void onCompleted() {}
    });
    call.samples().thenAccept(result::complete);
    result.whenComplete((value, error) -> {
      if (result.isCancelled()) {
        call.cancel();
      }
    });
    return result;
  }

  /**
   * Opens a Session stream for many generations at once. Close it when done. A generation whose
   * start fails with a retryable code before any of its events is sent again per the
   * {@linkplain #withRetryPolicy retry policy}, within the stream's deadline.
   */
  public Session openSession() {
    Deadline deadline = newDeadline();
    return new Session(withDeadline(GenerationServiceGrpc.newStub(channel), deadline), this::abort,
        (attempt, error) -> retryDelay(attempt, error, deadline));
  }

  /**
   * Cancels the generation with this id wherever it runs. Returns true if one was in flight, false
   * for unknown or already finished ids.
   */
  public boolean abort(String requestId) {
    AbortRequest request = AbortRequest.newBuilder().setRequestId(requestId).build();
    return unary(deadline -> withDeadline(GenerationServiceGrpc.newBlockingStub(channel), deadline)
        .abort(request)
        .getCancelled());
  }

  /** The model and engine behind the server. */
  public GetModelInfoResponse modelInfo() {
    return unary(deadline -> withDeadline(ModelServiceGrpc.newBlockingStub(channel), deadline)
        .getModelInfo(GetModelInfoRequest.getDefaultInstance()));
  }

  /** The engine's current occupancy. */
  public GetLoadResponse load() {
    return unary(deadline -> withDeadline(ModelServiceGrpc.newBlockingStub(channel), deadline)
        .getLoad(GetLoadRequest.getDefaultInstance()));
  }

  /** Tokenizes text as a {@code text} prompt would be. */
  public TokenizeResponse tokenize(String text) {
    TokenizeRequest request = TokenizeRequest.newBuilder().setText(text).build();
    return unary(deadline -> withDeadline(ModelServiceGrpc.newBlockingStub(channel), deadline).tokenize(request));
  }

  /**
   * Tokenizes a conversation ({@link Requests#message}s, oldest first) as a {@code chat} prompt
   * would be: rendered with the model's chat template (with the assistant's generation prompt),
   * then tokenized. The response holds the token ids ({@code getTokenIdsList()}) and the rendered
   * prompt ({@code getRenderedPrompt()}). The server refuses an empty conversation, or any
   * conversation when the model has no chat template, with INVALID_ARGUMENT.
   */
  public TokenizeResponse tokenize(List<ChatMessage> messages) {
    TokenizeRequest request = TokenizeRequest.newBuilder()
        .setChat(Chat.newBuilder().addAllMessages(Objects.requireNonNull(messages, "messages")))
        .build();
    return unary(deadline -> withDeadline(ModelServiceGrpc.newBlockingStub(channel), deadline).tokenize(request));
  }

  /**
   * Turns token ids (each below {@code GetModelInfo.vocab_size}, e.g. {@code
   * GenerationResult.tokenIds()} or {@code TokenizeResponse.getTokenIdsList()}) back into text.
   * Special tokens (such as chat markers) are left out unless {@code keepSpecialTokens}, as in
   * generated text.
   *
   * @throws IllegalArgumentException for a negative token id (token ids are unsigned; nothing is
   *     sent)
   */
  public String detokenize(List<Integer> tokenIds, boolean keepSpecialTokens) {
    DetokenizeRequest.Builder builder = DetokenizeRequest.newBuilder().setKeepSpecialTokens(keepSpecialTokens);
    for (Integer id : Objects.requireNonNull(tokenIds, "tokenIds")) {
      if (Objects.requireNonNull(id, "token id") < 0) {
        throw new IllegalArgumentException("token id " + id + " is negative");
      }
      builder.addTokenIds(id);
    }
    DetokenizeRequest request = builder.build();
    return unary(deadline -> withDeadline(ModelServiceGrpc.newBlockingStub(channel), deadline)
        .detokenize(request)
        .getText());
  }

  /** The generated blocking stub for GenerationService, with this client's deadline. */
  public GenerationServiceGrpc.GenerationServiceBlockingStub generationStub() {
    return withDeadline(GenerationServiceGrpc.newBlockingStub(channel));
  }

  /** The generated blocking stub for ModelService, with this client's deadline. */
  public ModelServiceGrpc.ModelServiceBlockingStub models() {
    return withDeadline(ModelServiceGrpc.newBlockingStub(channel));
  }

  private <S extends AbstractStub<S>> S withDeadline(S stub) {
    return timeout == null ? stub : stub.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS);
  }

  private <S extends AbstractStub<S>> S withDeadline(S stub, Deadline deadline) {
    return deadline == null ? stub : stub.withDeadline(deadline);
  }

  /** One deadline for a whole call, every attempt included; null without a timeout. */
  private Deadline newDeadline() {
    return timeout == null ? null : Deadline.after(timeout.toNanos(), TimeUnit.NANOSECONDS);
  }

  /** A unary call, retried per the policy. */
  private <T> T unary(Function<Deadline, T> call) {
    Deadline deadline = newDeadline();
    for (int attempt = 1; ; attempt++) {
      try {
        return call.apply(deadline);
      } catch (StatusRuntimeException e) {
        if (!backoff(attempt, e, deadline)) {
          throw e;
        }
      }
    }
  }

  /**
   * How long to wait before retrying after {@code error} ended attempt {@code attempt}, or null
   * when the error is final (not retryable, attempts used up, or the wait would pass the deadline).
   */
  Duration retryDelay(int attempt, Throwable error, Deadline deadline) {
    Duration delay = retry.delayBeforeRetry(attempt, ErrorDetails.of(error));
    if (delay == null || (deadline != null && deadline.timeRemaining(TimeUnit.NANOSECONDS) <= delay.toNanos())) {
      return null;
    }
    return delay;
  }

  /** Waits before the next attempt and returns true, or returns false when {@code error} is final. */
  private boolean backoff(int attempt, Throwable error, Deadline deadline) {
    Duration delay = retryDelay(attempt, error, deadline);
    if (delay == null) {
      return false;
    }
    try {
      sleeper.sleep(delay);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
    return true;
  }

  /** Shuts the channel down if this client opened it ({@link #connect}). */
  @Override
  public void close() {
    if (owned == null) {
      return;
    }
    owned.shutdown();
    try {
      if (!owned.awaitTermination(5, TimeUnit.SECONDS)) {
        owned.shutdownNow();
      }
    } catch (InterruptedException e) {
      owned.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }
}
