package dev.tokenwire.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Text generation: a server stream per request (Generate), many requests
 * multiplexed on one bidirectional stream (Session), and cancellation by id
 * from any connection (Abort).
 * Streaming contract: every generation ends with exactly one `finished`
 * event or a non-OK status, never silently. Deltas are never cumulative:
 * concatenating every `delta.text` gives the output text, and a multi-byte
 * character is never split across deltas. Several tokens per delta are
 * normal (speculative decoding, or a slow reader whose pending tokens were
 * coalesced into one event).
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class GenerationServiceGrpc {

  private GenerationServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "tokenwire.v1.GenerationService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.tokenwire.v1.GenerateRequest,
      dev.tokenwire.v1.GenerateResponse> getGenerateMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Generate",
      requestType = dev.tokenwire.v1.GenerateRequest.class,
      responseType = dev.tokenwire.v1.GenerateResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<dev.tokenwire.v1.GenerateRequest,
      dev.tokenwire.v1.GenerateResponse> getGenerateMethod() {
    io.grpc.MethodDescriptor<dev.tokenwire.v1.GenerateRequest, dev.tokenwire.v1.GenerateResponse> getGenerateMethod;
    if ((getGenerateMethod = GenerationServiceGrpc.getGenerateMethod) == null) {
      synchronized (GenerationServiceGrpc.class) {
        if ((getGenerateMethod = GenerationServiceGrpc.getGenerateMethod) == null) {
          GenerationServiceGrpc.getGenerateMethod = getGenerateMethod =
              io.grpc.MethodDescriptor.<dev.tokenwire.v1.GenerateRequest, dev.tokenwire.v1.GenerateResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Generate"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.GenerateRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.GenerateResponse.getDefaultInstance()))
              .setSchemaDescriptor(new GenerationServiceMethodDescriptorSupplier("Generate"))
              .build();
        }
      }
    }
    return getGenerateMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.tokenwire.v1.SessionRequest,
      dev.tokenwire.v1.SessionResponse> getSessionMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Session",
      requestType = dev.tokenwire.v1.SessionRequest.class,
      responseType = dev.tokenwire.v1.SessionResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
  public static io.grpc.MethodDescriptor<dev.tokenwire.v1.SessionRequest,
      dev.tokenwire.v1.SessionResponse> getSessionMethod() {
    io.grpc.MethodDescriptor<dev.tokenwire.v1.SessionRequest, dev.tokenwire.v1.SessionResponse> getSessionMethod;
    if ((getSessionMethod = GenerationServiceGrpc.getSessionMethod) == null) {
      synchronized (GenerationServiceGrpc.class) {
        if ((getSessionMethod = GenerationServiceGrpc.getSessionMethod) == null) {
          GenerationServiceGrpc.getSessionMethod = getSessionMethod =
              io.grpc.MethodDescriptor.<dev.tokenwire.v1.SessionRequest, dev.tokenwire.v1.SessionResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Session"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.SessionRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.SessionResponse.getDefaultInstance()))
              .setSchemaDescriptor(new GenerationServiceMethodDescriptorSupplier("Session"))
              .build();
        }
      }
    }
    return getSessionMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.tokenwire.v1.AbortRequest,
      dev.tokenwire.v1.AbortResponse> getAbortMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Abort",
      requestType = dev.tokenwire.v1.AbortRequest.class,
      responseType = dev.tokenwire.v1.AbortResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.tokenwire.v1.AbortRequest,
      dev.tokenwire.v1.AbortResponse> getAbortMethod() {
    io.grpc.MethodDescriptor<dev.tokenwire.v1.AbortRequest, dev.tokenwire.v1.AbortResponse> getAbortMethod;
    if ((getAbortMethod = GenerationServiceGrpc.getAbortMethod) == null) {
      synchronized (GenerationServiceGrpc.class) {
        if ((getAbortMethod = GenerationServiceGrpc.getAbortMethod) == null) {
          GenerationServiceGrpc.getAbortMethod = getAbortMethod =
              io.grpc.MethodDescriptor.<dev.tokenwire.v1.AbortRequest, dev.tokenwire.v1.AbortResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Abort"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.AbortRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.AbortResponse.getDefaultInstance()))
              .setSchemaDescriptor(new GenerationServiceMethodDescriptorSupplier("Abort"))
              .build();
        }
      }
    }
    return getAbortMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static GenerationServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<GenerationServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<GenerationServiceStub>() {
        @java.lang.Override
        public GenerationServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new GenerationServiceStub(channel, callOptions);
        }
      };
    return GenerationServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static GenerationServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<GenerationServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<GenerationServiceBlockingV2Stub>() {
        @java.lang.Override
        public GenerationServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new GenerationServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return GenerationServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static GenerationServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<GenerationServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<GenerationServiceBlockingStub>() {
        @java.lang.Override
        public GenerationServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new GenerationServiceBlockingStub(channel, callOptions);
        }
      };
    return GenerationServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static GenerationServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<GenerationServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<GenerationServiceFutureStub>() {
        @java.lang.Override
        public GenerationServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new GenerationServiceFutureStub(channel, callOptions);
        }
      };
    return GenerationServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Text generation: a server stream per request (Generate), many requests
   * multiplexed on one bidirectional stream (Session), and cancellation by id
   * from any connection (Abort).
   * Streaming contract: every generation ends with exactly one `finished`
   * event or a non-OK status, never silently. Deltas are never cumulative:
   * concatenating every `delta.text` gives the output text, and a multi-byte
   * character is never split across deltas. Several tokens per delta are
   * normal (speculative decoding, or a slow reader whose pending tokens were
   * coalesced into one event).
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Generates a completion for one request and streams its events: one
     * `started`, any number of `delta`, then one `finished`.
     * Errors: INVALID_ARGUMENT (with google.rpc.BadRequest field violations:
     * the first 20, the message counts the rest) for bad input, input too large
     * for the context included (refused by its size before any tokenizing),
     * ALREADY_EXISTS when `request_id` is already in flight,
     * RESOURCE_EXHAUSTED (with google.rpc.RetryInfo) when the engine's queue is
     * full or when the caller stopped reading for the server's stall timeout
     * (ErrorInfo reason READER_STALLED; the generation was cancelled),
     * UNAVAILABLE (with RetryInfo) while the model is loading or the server is
     * draining, UNAUTHENTICATED / PERMISSION_DENIED when the server requires a
     * bearer token. Cancelling the call, or its gRPC deadline passing, cancels
     * the generation and frees its engine slot at once. When the server drains,
     * generations in flight run on for its grace period; those still running
     * then end with FINISH_REASON_CANCELLED and their usage, and the call OK.
     * </pre>
     */
    default void generate(dev.tokenwire.v1.GenerateRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.GenerateResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGenerateMethod(), responseObserver);
    }

    /**
     * <pre>
     * Runs many generations on one bidirectional stream. Each `start` carries
     * a caller-chosen `request_id`; every response carries the id it belongs
     * to. A generation that fails (bad parameters included) gets an `error`
     * event for its id and the stream goes on. A `start` whose id is already in
     * flight gets an ALREADY_EXISTS `error` for that id and does not disturb the
     * running one. `cancel` ends one generation with a `finished` event whose
     * reason is FINISH_REASON_CANCELLED.
     * Half-closing the request side means "no more requests": generations in
     * flight run to completion, then the server ends the stream with OK.
     * Cancelling the call (or its deadline passing, or the connection dropping)
     * cancels every generation on it.
     * </pre>
     */
    default io.grpc.stub.StreamObserver<dev.tokenwire.v1.SessionRequest> session(
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.SessionResponse> responseObserver) {
      return io.grpc.stub.ServerCalls.asyncUnimplementedStreamingCall(getSessionMethod(), responseObserver);
    }

    /**
     * <pre>
     * Cancels the generation with the given id, wherever it runs (any
     * connection, Generate or Session). Idempotent: unknown and already
     * finished ids are not an error; an id that could never be valid (empty,
     * over 128 characters, not printable ASCII) is INVALID_ARGUMENT. The cancelled generation's stream ends
     * with a `finished` event whose reason is FINISH_REASON_CANCELLED.
     * </pre>
     */
    default void abort(dev.tokenwire.v1.AbortRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.AbortResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getAbortMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service GenerationService.
   * <pre>
   * Text generation: a server stream per request (Generate), many requests
   * multiplexed on one bidirectional stream (Session), and cancellation by id
   * from any connection (Abort).
   * Streaming contract: every generation ends with exactly one `finished`
   * event or a non-OK status, never silently. Deltas are never cumulative:
   * concatenating every `delta.text` gives the output text, and a multi-byte
   * character is never split across deltas. Several tokens per delta are
   * normal (speculative decoding, or a slow reader whose pending tokens were
   * coalesced into one event).
   * </pre>
   */
  public static abstract class GenerationServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return GenerationServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service GenerationService.
   * <pre>
   * Text generation: a server stream per request (Generate), many requests
   * multiplexed on one bidirectional stream (Session), and cancellation by id
   * from any connection (Abort).
   * Streaming contract: every generation ends with exactly one `finished`
   * event or a non-OK status, never silently. Deltas are never cumulative:
   * concatenating every `delta.text` gives the output text, and a multi-byte
   * character is never split across deltas. Several tokens per delta are
   * normal (speculative decoding, or a slow reader whose pending tokens were
   * coalesced into one event).
   * </pre>
   */
  public static final class GenerationServiceStub
      extends io.grpc.stub.AbstractAsyncStub<GenerationServiceStub> {
    private GenerationServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected GenerationServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new GenerationServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Generates a completion for one request and streams its events: one
     * `started`, any number of `delta`, then one `finished`.
     * Errors: INVALID_ARGUMENT (with google.rpc.BadRequest field violations:
     * the first 20, the message counts the rest) for bad input, input too large
     * for the context included (refused by its size before any tokenizing),
     * ALREADY_EXISTS when `request_id` is already in flight,
     * RESOURCE_EXHAUSTED (with google.rpc.RetryInfo) when the engine's queue is
     * full or when the caller stopped reading for the server's stall timeout
     * (ErrorInfo reason READER_STALLED; the generation was cancelled),
     * UNAVAILABLE (with RetryInfo) while the model is loading or the server is
     * draining, UNAUTHENTICATED / PERMISSION_DENIED when the server requires a
     * bearer token. Cancelling the call, or its gRPC deadline passing, cancels
     * the generation and frees its engine slot at once. When the server drains,
     * generations in flight run on for its grace period; those still running
     * then end with FINISH_REASON_CANCELLED and their usage, and the call OK.
     * </pre>
     */
    public void generate(dev.tokenwire.v1.GenerateRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.GenerateResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getGenerateMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Runs many generations on one bidirectional stream. Each `start` carries
     * a caller-chosen `request_id`; every response carries the id it belongs
     * to. A generation that fails (bad parameters included) gets an `error`
     * event for its id and the stream goes on. A `start` whose id is already in
     * flight gets an ALREADY_EXISTS `error` for that id and does not disturb the
     * running one. `cancel` ends one generation with a `finished` event whose
     * reason is FINISH_REASON_CANCELLED.
     * Half-closing the request side means "no more requests": generations in
     * flight run to completion, then the server ends the stream with OK.
     * Cancelling the call (or its deadline passing, or the connection dropping)
     * cancels every generation on it.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<dev.tokenwire.v1.SessionRequest> session(
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.SessionResponse> responseObserver) {
      return io.grpc.stub.ClientCalls.asyncBidiStreamingCall(
          getChannel().newCall(getSessionMethod(), getCallOptions()), responseObserver);
    }

    /**
     * <pre>
     * Cancels the generation with the given id, wherever it runs (any
     * connection, Generate or Session). Idempotent: unknown and already
     * finished ids are not an error; an id that could never be valid (empty,
     * over 128 characters, not printable ASCII) is INVALID_ARGUMENT. The cancelled generation's stream ends
     * with a `finished` event whose reason is FINISH_REASON_CANCELLED.
     * </pre>
     */
    public void abort(dev.tokenwire.v1.AbortRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.AbortResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getAbortMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service GenerationService.
   * <pre>
   * Text generation: a server stream per request (Generate), many requests
   * multiplexed on one bidirectional stream (Session), and cancellation by id
   * from any connection (Abort).
   * Streaming contract: every generation ends with exactly one `finished`
   * event or a non-OK status, never silently. Deltas are never cumulative:
   * concatenating every `delta.text` gives the output text, and a multi-byte
   * character is never split across deltas. Several tokens per delta are
   * normal (speculative decoding, or a slow reader whose pending tokens were
   * coalesced into one event).
   * </pre>
   */
  public static final class GenerationServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<GenerationServiceBlockingV2Stub> {
    private GenerationServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected GenerationServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new GenerationServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Generates a completion for one request and streams its events: one
     * `started`, any number of `delta`, then one `finished`.
     * Errors: INVALID_ARGUMENT (with google.rpc.BadRequest field violations:
     * the first 20, the message counts the rest) for bad input, input too large
     * for the context included (refused by its size before any tokenizing),
     * ALREADY_EXISTS when `request_id` is already in flight,
     * RESOURCE_EXHAUSTED (with google.rpc.RetryInfo) when the engine's queue is
     * full or when the caller stopped reading for the server's stall timeout
     * (ErrorInfo reason READER_STALLED; the generation was cancelled),
     * UNAVAILABLE (with RetryInfo) while the model is loading or the server is
     * draining, UNAUTHENTICATED / PERMISSION_DENIED when the server requires a
     * bearer token. Cancelling the call, or its gRPC deadline passing, cancels
     * the generation and frees its engine slot at once. When the server drains,
     * generations in flight run on for its grace period; those still running
     * then end with FINISH_REASON_CANCELLED and their usage, and the call OK.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<?, dev.tokenwire.v1.GenerateResponse>
        generate(dev.tokenwire.v1.GenerateRequest request) {
      return io.grpc.stub.ClientCalls.blockingV2ServerStreamingCall(
          getChannel(), getGenerateMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Runs many generations on one bidirectional stream. Each `start` carries
     * a caller-chosen `request_id`; every response carries the id it belongs
     * to. A generation that fails (bad parameters included) gets an `error`
     * event for its id and the stream goes on. A `start` whose id is already in
     * flight gets an ALREADY_EXISTS `error` for that id and does not disturb the
     * running one. `cancel` ends one generation with a `finished` event whose
     * reason is FINISH_REASON_CANCELLED.
     * Half-closing the request side means "no more requests": generations in
     * flight run to completion, then the server ends the stream with OK.
     * Cancelling the call (or its deadline passing, or the connection dropping)
     * cancels every generation on it.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<dev.tokenwire.v1.SessionRequest, dev.tokenwire.v1.SessionResponse>
        session() {
      return io.grpc.stub.ClientCalls.blockingBidiStreamingCall(
          getChannel(), getSessionMethod(), getCallOptions());
    }

    /**
     * <pre>
     * Cancels the generation with the given id, wherever it runs (any
     * connection, Generate or Session). Idempotent: unknown and already
     * finished ids are not an error; an id that could never be valid (empty,
     * over 128 characters, not printable ASCII) is INVALID_ARGUMENT. The cancelled generation's stream ends
     * with a `finished` event whose reason is FINISH_REASON_CANCELLED.
     * </pre>
     */
    public dev.tokenwire.v1.AbortResponse abort(dev.tokenwire.v1.AbortRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getAbortMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service GenerationService.
   * <pre>
   * Text generation: a server stream per request (Generate), many requests
   * multiplexed on one bidirectional stream (Session), and cancellation by id
   * from any connection (Abort).
   * Streaming contract: every generation ends with exactly one `finished`
   * event or a non-OK status, never silently. Deltas are never cumulative:
   * concatenating every `delta.text` gives the output text, and a multi-byte
   * character is never split across deltas. Several tokens per delta are
   * normal (speculative decoding, or a slow reader whose pending tokens were
   * coalesced into one event).
   * </pre>
   */
  public static final class GenerationServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<GenerationServiceBlockingStub> {
    private GenerationServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected GenerationServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new GenerationServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Generates a completion for one request and streams its events: one
     * `started`, any number of `delta`, then one `finished`.
     * Errors: INVALID_ARGUMENT (with google.rpc.BadRequest field violations:
     * the first 20, the message counts the rest) for bad input, input too large
     * for the context included (refused by its size before any tokenizing),
     * ALREADY_EXISTS when `request_id` is already in flight,
     * RESOURCE_EXHAUSTED (with google.rpc.RetryInfo) when the engine's queue is
     * full or when the caller stopped reading for the server's stall timeout
     * (ErrorInfo reason READER_STALLED; the generation was cancelled),
     * UNAVAILABLE (with RetryInfo) while the model is loading or the server is
     * draining, UNAUTHENTICATED / PERMISSION_DENIED when the server requires a
     * bearer token. Cancelling the call, or its gRPC deadline passing, cancels
     * the generation and frees its engine slot at once. When the server drains,
     * generations in flight run on for its grace period; those still running
     * then end with FINISH_REASON_CANCELLED and their usage, and the call OK.
     * </pre>
     */
    public java.util.Iterator<dev.tokenwire.v1.GenerateResponse> generate(
        dev.tokenwire.v1.GenerateRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getGenerateMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Cancels the generation with the given id, wherever it runs (any
     * connection, Generate or Session). Idempotent: unknown and already
     * finished ids are not an error; an id that could never be valid (empty,
     * over 128 characters, not printable ASCII) is INVALID_ARGUMENT. The cancelled generation's stream ends
     * with a `finished` event whose reason is FINISH_REASON_CANCELLED.
     * </pre>
     */
    public dev.tokenwire.v1.AbortResponse abort(dev.tokenwire.v1.AbortRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getAbortMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service GenerationService.
   * <pre>
   * Text generation: a server stream per request (Generate), many requests
   * multiplexed on one bidirectional stream (Session), and cancellation by id
   * from any connection (Abort).
   * Streaming contract: every generation ends with exactly one `finished`
   * event or a non-OK status, never silently. Deltas are never cumulative:
   * concatenating every `delta.text` gives the output text, and a multi-byte
   * character is never split across deltas. Several tokens per delta are
   * normal (speculative decoding, or a slow reader whose pending tokens were
   * coalesced into one event).
   * </pre>
   */
  public static final class GenerationServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<GenerationServiceFutureStub> {
    private GenerationServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected GenerationServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new GenerationServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Cancels the generation with the given id, wherever it runs (any
     * connection, Generate or Session). Idempotent: unknown and already
     * finished ids are not an error; an id that could never be valid (empty,
     * over 128 characters, not printable ASCII) is INVALID_ARGUMENT. The cancelled generation's stream ends
     * with a `finished` event whose reason is FINISH_REASON_CANCELLED.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.tokenwire.v1.AbortResponse> abort(
        dev.tokenwire.v1.AbortRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getAbortMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_GENERATE = 0;
  private static final int METHODID_ABORT = 1;
  private static final int METHODID_SESSION = 2;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_GENERATE:
          serviceImpl.generate((dev.tokenwire.v1.GenerateRequest) request,
              (io.grpc.stub.StreamObserver<dev.tokenwire.v1.GenerateResponse>) responseObserver);
          break;
        case METHODID_ABORT:
          serviceImpl.abort((dev.tokenwire.v1.AbortRequest) request,
              (io.grpc.stub.StreamObserver<dev.tokenwire.v1.AbortResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_SESSION:
          return (io.grpc.stub.StreamObserver<Req>) serviceImpl.session(
              (io.grpc.stub.StreamObserver<dev.tokenwire.v1.SessionResponse>) responseObserver);
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getGenerateMethod(),
          io.grpc.stub.ServerCalls.asyncServerStreamingCall(
            new MethodHandlers<
              dev.tokenwire.v1.GenerateRequest,
              dev.tokenwire.v1.GenerateResponse>(
                service, METHODID_GENERATE)))
        .addMethod(
          getSessionMethod(),
          io.grpc.stub.ServerCalls.asyncBidiStreamingCall(
            new MethodHandlers<
              dev.tokenwire.v1.SessionRequest,
              dev.tokenwire.v1.SessionResponse>(
                service, METHODID_SESSION)))
        .addMethod(
          getAbortMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.tokenwire.v1.AbortRequest,
              dev.tokenwire.v1.AbortResponse>(
                service, METHODID_ABORT)))
        .build();
  }

  private static abstract class GenerationServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    GenerationServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.tokenwire.v1.GenerationProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("GenerationService");
    }
  }

  private static final class GenerationServiceFileDescriptorSupplier
      extends GenerationServiceBaseDescriptorSupplier {
    GenerationServiceFileDescriptorSupplier() {}
  }

  private static final class GenerationServiceMethodDescriptorSupplier
      extends GenerationServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    GenerationServiceMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (GenerationServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new GenerationServiceFileDescriptorSupplier())
              .addMethod(getGenerateMethod())
              .addMethod(getSessionMethod())
              .addMethod(getAbortMethod())
              .build();
        }
      }
    }
    return result;
  }
}
