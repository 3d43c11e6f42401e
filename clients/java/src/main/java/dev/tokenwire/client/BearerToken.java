package dev.tokenwire.client;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import java.nio.charset.StandardCharsets;

/**
 * Sends {@code authorization: Bearer <token>} with every call (unary and streaming) as a {@link
 * ClientInterceptor} that adds the header, so it works on plaintext channels as on TLS ones.
 * {@link TokenwireClient#connect(String, ConnectOptions)} installs it for {@link
 * ConnectOptions.Builder#bearerToken}; add it yourself to a channel you build for {@link
 * TokenwireClient#of}. A call that already carries an {@code authorization} header keeps it.
 */
public final class BearerToken implements ClientInterceptor {
  /** The longest token sent, in bytes; the server refuses longer ones unread. */
  public static final int MAX_BYTES = 4096;

  /** The metadata key the token travels in. */
  public static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final String value;

  private BearerToken(String token) {
    this.value = "Bearer " + token;
  }

  /**
   * An interceptor for {@code token}: visible ASCII without whitespace, 1 to {@value #MAX_BYTES}
   * bytes, else IllegalArgumentException (whose message never contains the token).
   */
  public static BearerToken of(String token) {
    check(token);
    return new BearerToken(token);
  }

  static void check(String token) {
    if (token == null || token.isEmpty()) {
      throw new IllegalArgumentException("bearer token is empty");
    }
    if (token.getBytes(StandardCharsets.UTF_8).length > MAX_BYTES) {
      throw new IllegalArgumentException("bearer token is longer than " + MAX_BYTES + " bytes");
    }
    for (int i = 0; i < token.length(); i++) {
      char c = token.charAt(i);
      if (c < 0x21 || c > 0x7e) {
        throw new IllegalArgumentException("bearer token must be visible ASCII without whitespace");
      }
    }
  }

  @Override
  public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
      MethodDescriptor<ReqT, RespT> method, CallOptions callOptions, Channel next) {
    return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, callOptions)) {
      @Override
      public void start(Listener<RespT> responseListener, Metadata headers) {
        if (!headers.containsKey(AUTHORIZATION)) {
          headers.put(AUTHORIZATION, value);
        }
        super.start(responseListener, headers);
      }
    };
  }

  /** Never shows the token. */
  @Override
  public String toString() {
    return "BearerToken[redacted]";
  }
}
