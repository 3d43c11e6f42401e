package dev.tokenwire.client;

import dev.tokenwire.v1.AbortRequest;
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
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.stub.AbstractStub;
import io.grpc.stub.MetadataUtils;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

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

  private final Channel channel;
  private final ManagedChannel owned;
  private final Duration timeout;

  private TokenwireClient(Channel channel, ManagedChannel owned, Duration timeout) {
    this.channel = Objects.requireNonNull(channel, "channel");
    this.owned = owned;
    this.timeout = timeout;
  }

  /** A client on a channel the caller owns (TLS, interceptors, ...); {@link #close()} leaves it open. */
  public static TokenwireClient of(Channel channel) {
    return new TokenwireClient(channel, null, null);
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
    return new TokenwireClient(channel, channel, null);
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
    return new TokenwireClient(channel, null, Objects.requireNonNull(timeout, "timeout"));
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
    return new TokenwireClient(intercepted, null, timeout);
  }

  /**
   * Starts one generation and returns its event stream. Close the stream (try-with-resources)
   * to cancel the generation early.
   */
  public GenerationStream generate(GenerateRequest request) {
    Context.CancellableContext context = Context.current().withCancellation();
    Context previous = context.attach();
    try {
      Iterator<GenerateResponse> responses =
          withDeadline(GenerationServiceGrpc.newBlockingStub(channel)).generate(request);
      return new GenerationStream(context, responses, Accumulator.samples(request));
    } finally {
      context.detach(previous);
    }
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

  /** Opens a Session stream for many generations at once. Close it when done. */
  public Session openSession() {
    return new Session(withDeadline(GenerationServiceGrpc.newStub(channel)), this::abort);
  }

  /**
   * Cancels the generation with this id wherever it runs. Returns true if one was in flight, false
   * for unknown or already finished ids.
   */
  public boolean abort(String requestId) {
    return withDeadline(GenerationServiceGrpc.newBlockingStub(channel))
        .abort(AbortRequest.newBuilder().setRequestId(requestId).build())
        .getCancelled();
  }

  /** The model and engine behind the server. */
  public GetModelInfoResponse modelInfo() {
    return models().getModelInfo(GetModelInfoRequest.getDefaultInstance());
  }

  /** The engine's current occupancy. */
  public GetLoadResponse load() {
    return models().getLoad(GetLoadRequest.getDefaultInstance());
  }

  /** Tokenizes text as a {@code text} prompt would be. */
  public TokenizeResponse tokenize(String text) {
    return models().tokenize(TokenizeRequest.newBuilder().setText(text).build());
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
