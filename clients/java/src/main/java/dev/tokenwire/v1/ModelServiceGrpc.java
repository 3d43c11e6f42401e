package dev.tokenwire.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Facts about the served model and engine, and the model's tokenizer.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class ModelServiceGrpc {

  private ModelServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "tokenwire.v1.ModelService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.tokenwire.v1.GetModelInfoRequest,
      dev.tokenwire.v1.GetModelInfoResponse> getGetModelInfoMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetModelInfo",
      requestType = dev.tokenwire.v1.GetModelInfoRequest.class,
      responseType = dev.tokenwire.v1.GetModelInfoResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.tokenwire.v1.GetModelInfoRequest,
      dev.tokenwire.v1.GetModelInfoResponse> getGetModelInfoMethod() {
    io.grpc.MethodDescriptor<dev.tokenwire.v1.GetModelInfoRequest, dev.tokenwire.v1.GetModelInfoResponse> getGetModelInfoMethod;
    if ((getGetModelInfoMethod = ModelServiceGrpc.getGetModelInfoMethod) == null) {
      synchronized (ModelServiceGrpc.class) {
        if ((getGetModelInfoMethod = ModelServiceGrpc.getGetModelInfoMethod) == null) {
          ModelServiceGrpc.getGetModelInfoMethod = getGetModelInfoMethod =
              io.grpc.MethodDescriptor.<dev.tokenwire.v1.GetModelInfoRequest, dev.tokenwire.v1.GetModelInfoResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetModelInfo"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.GetModelInfoRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.GetModelInfoResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ModelServiceMethodDescriptorSupplier("GetModelInfo"))
              .build();
        }
      }
    }
    return getGetModelInfoMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.tokenwire.v1.GetLoadRequest,
      dev.tokenwire.v1.GetLoadResponse> getGetLoadMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetLoad",
      requestType = dev.tokenwire.v1.GetLoadRequest.class,
      responseType = dev.tokenwire.v1.GetLoadResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.tokenwire.v1.GetLoadRequest,
      dev.tokenwire.v1.GetLoadResponse> getGetLoadMethod() {
    io.grpc.MethodDescriptor<dev.tokenwire.v1.GetLoadRequest, dev.tokenwire.v1.GetLoadResponse> getGetLoadMethod;
    if ((getGetLoadMethod = ModelServiceGrpc.getGetLoadMethod) == null) {
      synchronized (ModelServiceGrpc.class) {
        if ((getGetLoadMethod = ModelServiceGrpc.getGetLoadMethod) == null) {
          ModelServiceGrpc.getGetLoadMethod = getGetLoadMethod =
              io.grpc.MethodDescriptor.<dev.tokenwire.v1.GetLoadRequest, dev.tokenwire.v1.GetLoadResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetLoad"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.GetLoadRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.GetLoadResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ModelServiceMethodDescriptorSupplier("GetLoad"))
              .build();
        }
      }
    }
    return getGetLoadMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.tokenwire.v1.WatchLoadRequest,
      dev.tokenwire.v1.WatchLoadResponse> getWatchLoadMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "WatchLoad",
      requestType = dev.tokenwire.v1.WatchLoadRequest.class,
      responseType = dev.tokenwire.v1.WatchLoadResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<dev.tokenwire.v1.WatchLoadRequest,
      dev.tokenwire.v1.WatchLoadResponse> getWatchLoadMethod() {
    io.grpc.MethodDescriptor<dev.tokenwire.v1.WatchLoadRequest, dev.tokenwire.v1.WatchLoadResponse> getWatchLoadMethod;
    if ((getWatchLoadMethod = ModelServiceGrpc.getWatchLoadMethod) == null) {
      synchronized (ModelServiceGrpc.class) {
        if ((getWatchLoadMethod = ModelServiceGrpc.getWatchLoadMethod) == null) {
          ModelServiceGrpc.getWatchLoadMethod = getWatchLoadMethod =
              io.grpc.MethodDescriptor.<dev.tokenwire.v1.WatchLoadRequest, dev.tokenwire.v1.WatchLoadResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "WatchLoad"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.WatchLoadRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.WatchLoadResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ModelServiceMethodDescriptorSupplier("WatchLoad"))
              .build();
        }
      }
    }
    return getWatchLoadMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.tokenwire.v1.TokenizeRequest,
      dev.tokenwire.v1.TokenizeResponse> getTokenizeMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Tokenize",
      requestType = dev.tokenwire.v1.TokenizeRequest.class,
      responseType = dev.tokenwire.v1.TokenizeResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.tokenwire.v1.TokenizeRequest,
      dev.tokenwire.v1.TokenizeResponse> getTokenizeMethod() {
    io.grpc.MethodDescriptor<dev.tokenwire.v1.TokenizeRequest, dev.tokenwire.v1.TokenizeResponse> getTokenizeMethod;
    if ((getTokenizeMethod = ModelServiceGrpc.getTokenizeMethod) == null) {
      synchronized (ModelServiceGrpc.class) {
        if ((getTokenizeMethod = ModelServiceGrpc.getTokenizeMethod) == null) {
          ModelServiceGrpc.getTokenizeMethod = getTokenizeMethod =
              io.grpc.MethodDescriptor.<dev.tokenwire.v1.TokenizeRequest, dev.tokenwire.v1.TokenizeResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Tokenize"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.TokenizeRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.TokenizeResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ModelServiceMethodDescriptorSupplier("Tokenize"))
              .build();
        }
      }
    }
    return getTokenizeMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.tokenwire.v1.DetokenizeRequest,
      dev.tokenwire.v1.DetokenizeResponse> getDetokenizeMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Detokenize",
      requestType = dev.tokenwire.v1.DetokenizeRequest.class,
      responseType = dev.tokenwire.v1.DetokenizeResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.tokenwire.v1.DetokenizeRequest,
      dev.tokenwire.v1.DetokenizeResponse> getDetokenizeMethod() {
    io.grpc.MethodDescriptor<dev.tokenwire.v1.DetokenizeRequest, dev.tokenwire.v1.DetokenizeResponse> getDetokenizeMethod;
    if ((getDetokenizeMethod = ModelServiceGrpc.getDetokenizeMethod) == null) {
      synchronized (ModelServiceGrpc.class) {
        if ((getDetokenizeMethod = ModelServiceGrpc.getDetokenizeMethod) == null) {
          ModelServiceGrpc.getDetokenizeMethod = getDetokenizeMethod =
              io.grpc.MethodDescriptor.<dev.tokenwire.v1.DetokenizeRequest, dev.tokenwire.v1.DetokenizeResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Detokenize"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.DetokenizeRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.tokenwire.v1.DetokenizeResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ModelServiceMethodDescriptorSupplier("Detokenize"))
              .build();
        }
      }
    }
    return getDetokenizeMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static ModelServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ModelServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ModelServiceStub>() {
        @java.lang.Override
        public ModelServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ModelServiceStub(channel, callOptions);
        }
      };
    return ModelServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static ModelServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ModelServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ModelServiceBlockingV2Stub>() {
        @java.lang.Override
        public ModelServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ModelServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return ModelServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static ModelServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ModelServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ModelServiceBlockingStub>() {
        @java.lang.Override
        public ModelServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ModelServiceBlockingStub(channel, callOptions);
        }
      };
    return ModelServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static ModelServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ModelServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ModelServiceFutureStub>() {
        @java.lang.Override
        public ModelServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ModelServiceFutureStub(channel, callOptions);
        }
      };
    return ModelServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Facts about the served model and engine, and the model's tokenizer.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Describes the model and engine behind this server.
     * </pre>
     */
    default void getModelInfo(dev.tokenwire.v1.GetModelInfoRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.GetModelInfoResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetModelInfoMethod(), responseObserver);
    }

    /**
     * <pre>
     * Reports the engine's current occupancy.
     * </pre>
     */
    default void getLoad(dev.tokenwire.v1.GetLoadRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.GetLoadResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetLoadMethod(), responseObserver);
    }

    /**
     * <pre>
     * Streams the same load figures as GetLoad, one message at once and then
     * one per interval, until the caller cancels or the server drains. The
     * same numbers are offered in the xDS standard form too:
     * xds.service.orca.v3.OpenRcaService/StreamCoreMetrics on this server, and
     * an `endpoint-load-metrics-bin` trailer (an OrcaLoadReport) on each call.
     * </pre>
     */
    default void watchLoad(dev.tokenwire.v1.WatchLoadRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.WatchLoadResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getWatchLoadMethod(), responseObserver);
    }

    /**
     * <pre>
     * Tokenizes text or a chat conversation exactly as a generation request
     * would.
     * </pre>
     */
    default void tokenize(dev.tokenwire.v1.TokenizeRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.TokenizeResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getTokenizeMethod(), responseObserver);
    }

    /**
     * <pre>
     * Turns token ids back into text.
     * </pre>
     */
    default void detokenize(dev.tokenwire.v1.DetokenizeRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.DetokenizeResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDetokenizeMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service ModelService.
   * <pre>
   * Facts about the served model and engine, and the model's tokenizer.
   * </pre>
   */
  public static abstract class ModelServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return ModelServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service ModelService.
   * <pre>
   * Facts about the served model and engine, and the model's tokenizer.
   * </pre>
   */
  public static final class ModelServiceStub
      extends io.grpc.stub.AbstractAsyncStub<ModelServiceStub> {
    private ModelServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ModelServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ModelServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Describes the model and engine behind this server.
     * </pre>
     */
    public void getModelInfo(dev.tokenwire.v1.GetModelInfoRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.GetModelInfoResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetModelInfoMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Reports the engine's current occupancy.
     * </pre>
     */
    public void getLoad(dev.tokenwire.v1.GetLoadRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.GetLoadResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetLoadMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Streams the same load figures as GetLoad, one message at once and then
     * one per interval, until the caller cancels or the server drains. The
     * same numbers are offered in the xDS standard form too:
     * xds.service.orca.v3.OpenRcaService/StreamCoreMetrics on this server, and
     * an `endpoint-load-metrics-bin` trailer (an OrcaLoadReport) on each call.
     * </pre>
     */
    public void watchLoad(dev.tokenwire.v1.WatchLoadRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.WatchLoadResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getWatchLoadMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Tokenizes text or a chat conversation exactly as a generation request
     * would.
     * </pre>
     */
    public void tokenize(dev.tokenwire.v1.TokenizeRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.TokenizeResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getTokenizeMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Turns token ids back into text.
     * </pre>
     */
    public void detokenize(dev.tokenwire.v1.DetokenizeRequest request,
        io.grpc.stub.StreamObserver<dev.tokenwire.v1.DetokenizeResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDetokenizeMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service ModelService.
   * <pre>
   * Facts about the served model and engine, and the model's tokenizer.
   * </pre>
   */
  public static final class ModelServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<ModelServiceBlockingV2Stub> {
    private ModelServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ModelServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ModelServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Describes the model and engine behind this server.
     * </pre>
     */
    public dev.tokenwire.v1.GetModelInfoResponse getModelInfo(dev.tokenwire.v1.GetModelInfoRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetModelInfoMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Reports the engine's current occupancy.
     * </pre>
     */
    public dev.tokenwire.v1.GetLoadResponse getLoad(dev.tokenwire.v1.GetLoadRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetLoadMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Streams the same load figures as GetLoad, one message at once and then
     * one per interval, until the caller cancels or the server drains. The
     * same numbers are offered in the xDS standard form too:
     * xds.service.orca.v3.OpenRcaService/StreamCoreMetrics on this server, and
     * an `endpoint-load-metrics-bin` trailer (an OrcaLoadReport) on each call.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<?, dev.tokenwire.v1.WatchLoadResponse>
        watchLoad(dev.tokenwire.v1.WatchLoadRequest request) {
      return io.grpc.stub.ClientCalls.blockingV2ServerStreamingCall(
          getChannel(), getWatchLoadMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Tokenizes text or a chat conversation exactly as a generation request
     * would.
     * </pre>
     */
    public dev.tokenwire.v1.TokenizeResponse tokenize(dev.tokenwire.v1.TokenizeRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getTokenizeMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Turns token ids back into text.
     * </pre>
     */
    public dev.tokenwire.v1.DetokenizeResponse detokenize(dev.tokenwire.v1.DetokenizeRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getDetokenizeMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service ModelService.
   * <pre>
   * Facts about the served model and engine, and the model's tokenizer.
   * </pre>
   */
  public static final class ModelServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<ModelServiceBlockingStub> {
    private ModelServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ModelServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ModelServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Describes the model and engine behind this server.
     * </pre>
     */
    public dev.tokenwire.v1.GetModelInfoResponse getModelInfo(dev.tokenwire.v1.GetModelInfoRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetModelInfoMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Reports the engine's current occupancy.
     * </pre>
     */
    public dev.tokenwire.v1.GetLoadResponse getLoad(dev.tokenwire.v1.GetLoadRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetLoadMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Streams the same load figures as GetLoad, one message at once and then
     * one per interval, until the caller cancels or the server drains. The
     * same numbers are offered in the xDS standard form too:
     * xds.service.orca.v3.OpenRcaService/StreamCoreMetrics on this server, and
     * an `endpoint-load-metrics-bin` trailer (an OrcaLoadReport) on each call.
     * </pre>
     */
    public java.util.Iterator<dev.tokenwire.v1.WatchLoadResponse> watchLoad(
        dev.tokenwire.v1.WatchLoadRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getWatchLoadMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Tokenizes text or a chat conversation exactly as a generation request
     * would.
     * </pre>
     */
    public dev.tokenwire.v1.TokenizeResponse tokenize(dev.tokenwire.v1.TokenizeRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getTokenizeMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Turns token ids back into text.
     * </pre>
     */
    public dev.tokenwire.v1.DetokenizeResponse detokenize(dev.tokenwire.v1.DetokenizeRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDetokenizeMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service ModelService.
   * <pre>
   * Facts about the served model and engine, and the model's tokenizer.
   * </pre>
   */
  public static final class ModelServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<ModelServiceFutureStub> {
    private ModelServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ModelServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ModelServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Describes the model and engine behind this server.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.tokenwire.v1.GetModelInfoResponse> getModelInfo(
        dev.tokenwire.v1.GetModelInfoRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetModelInfoMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Reports the engine's current occupancy.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.tokenwire.v1.GetLoadResponse> getLoad(
        dev.tokenwire.v1.GetLoadRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetLoadMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Tokenizes text or a chat conversation exactly as a generation request
     * would.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.tokenwire.v1.TokenizeResponse> tokenize(
        dev.tokenwire.v1.TokenizeRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getTokenizeMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Turns token ids back into text.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.tokenwire.v1.DetokenizeResponse> detokenize(
        dev.tokenwire.v1.DetokenizeRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDetokenizeMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_GET_MODEL_INFO = 0;
  private static final int METHODID_GET_LOAD = 1;
  private static final int METHODID_WATCH_LOAD = 2;
  private static final int METHODID_TOKENIZE = 3;
  private static final int METHODID_DETOKENIZE = 4;

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
        case METHODID_GET_MODEL_INFO:
          serviceImpl.getModelInfo((dev.tokenwire.v1.GetModelInfoRequest) request,
              (io.grpc.stub.StreamObserver<dev.tokenwire.v1.GetModelInfoResponse>) responseObserver);
          break;
        case METHODID_GET_LOAD:
          serviceImpl.getLoad((dev.tokenwire.v1.GetLoadRequest) request,
              (io.grpc.stub.StreamObserver<dev.tokenwire.v1.GetLoadResponse>) responseObserver);
          break;
        case METHODID_WATCH_LOAD:
          serviceImpl.watchLoad((dev.tokenwire.v1.WatchLoadRequest) request,
              (io.grpc.stub.StreamObserver<dev.tokenwire.v1.WatchLoadResponse>) responseObserver);
          break;
        case METHODID_TOKENIZE:
          serviceImpl.tokenize((dev.tokenwire.v1.TokenizeRequest) request,
              (io.grpc.stub.StreamObserver<dev.tokenwire.v1.TokenizeResponse>) responseObserver);
          break;
        case METHODID_DETOKENIZE:
          serviceImpl.detokenize((dev.tokenwire.v1.DetokenizeRequest) request,
              (io.grpc.stub.StreamObserver<dev.tokenwire.v1.DetokenizeResponse>) responseObserver);
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
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getGetModelInfoMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.tokenwire.v1.GetModelInfoRequest,
              dev.tokenwire.v1.GetModelInfoResponse>(
                service, METHODID_GET_MODEL_INFO)))
        .addMethod(
          getGetLoadMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.tokenwire.v1.GetLoadRequest,
              dev.tokenwire.v1.GetLoadResponse>(
                service, METHODID_GET_LOAD)))
        .addMethod(
          getWatchLoadMethod(),
          io.grpc.stub.ServerCalls.asyncServerStreamingCall(
            new MethodHandlers<
              dev.tokenwire.v1.WatchLoadRequest,
              dev.tokenwire.v1.WatchLoadResponse>(
                service, METHODID_WATCH_LOAD)))
        .addMethod(
          getTokenizeMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.tokenwire.v1.TokenizeRequest,
              dev.tokenwire.v1.TokenizeResponse>(
                service, METHODID_TOKENIZE)))
        .addMethod(
          getDetokenizeMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.tokenwire.v1.DetokenizeRequest,
              dev.tokenwire.v1.DetokenizeResponse>(
                service, METHODID_DETOKENIZE)))
        .build();
  }

  private static abstract class ModelServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    ModelServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.tokenwire.v1.ModelProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("ModelService");
    }
  }

  private static final class ModelServiceFileDescriptorSupplier
      extends ModelServiceBaseDescriptorSupplier {
    ModelServiceFileDescriptorSupplier() {}
  }

  private static final class ModelServiceMethodDescriptorSupplier
      extends ModelServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    ModelServiceMethodDescriptorSupplier(java.lang.String methodName) {
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
      synchronized (ModelServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new ModelServiceFileDescriptorSupplier())
              .addMethod(getGetModelInfoMethod())
              .addMethod(getGetLoadMethod())
              .addMethod(getWatchLoadMethod())
              .addMethod(getTokenizeMethod())
              .addMethod(getDetokenizeMethod())
              .build();
        }
      }
    }
    return result;
  }
}
