package dev.tokenwire.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tokenwire.v1.AbortRequest;
import dev.tokenwire.v1.FinishReason;
import io.grpc.InsecureServerCredentials;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.MetadataUtils;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS / token options: validation, the examples' environment variables, and the bearer token on
 * the wire (a real plaintext Netty server on 127.0.0.1). TLS against a real TLS server is tested
 * live: tests/test_client_java.py.
 */
class ConnectOptionsTest {
  private static final Duration WAIT = Duration.ofSeconds(10);

  /** "method authorization" for every call the server saw ("-" when no header). */
  private final List<String> seen = new CopyOnWriteArrayList<>();
  private Server server;
  private String target;

  @BeforeEach
  void setUp() throws Exception {
    ServerInterceptor recorder = new ServerInterceptor() {
      @Override
      public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
          ServerCall<ReqT, RespT> call, Metadata headers, ServerCallHandler<ReqT, RespT> next) {
        String authorization = headers.get(BearerToken.AUTHORIZATION);
        seen.add(call.getMethodDescriptor().getBareMethodName() + " " + (authorization == null ? "-" : authorization));
        return next.startCall(call, headers);
      }
    };
    // NettyServerBuilder for an address on 127.0.0.1 (Grpc.newServerBuilderForPort binds every interface).
    server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0), InsecureServerCredentials.create())
        .addService(ServerInterceptors.intercept(new FakeGenerationService(), recorder))
        .build()
        .start();
    target = "127.0.0.1:" + server.getPort();
  }

  @AfterEach
  void tearDown() throws Exception {
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  /** One unary, one server-streaming and one bidi call. */
  private List<String> callsSeen(ConnectOptions options) throws Exception {
    seen.clear();
    try (TokenwireClient client = TokenwireClient.connect(target, options)) {
      TokenwireClient timed = client.withTimeout(WAIT);
      assertTrue(timed.abort("running"));
      assertEquals("Hello world", timed.complete(Requests.text("hi").build()).text());
      try (Session session = timed.openSession()) {
        SessionGeneration one = session.start(Requests.text("a").setRequestId("s")
            .setStopping(Requests.maxTokens(1)).build());
        session.halfClose();
        assertEquals(FinishReason.FINISH_REASON_LENGTH, one.result().get(10, TimeUnit.SECONDS).reason());
      }
    }
    return List.copyOf(seen);
  }

  @Test
  void theTokenGoesWithEveryCallOnAPlaintextChannel() throws Exception {
    List<String> calls = callsSeen(ConnectOptions.builder().bearerToken("tw-abc.DEF_123").build());
    assertEquals(List.of("Abort Bearer tw-abc.DEF_123", "Generate Bearer tw-abc.DEF_123",
        "Session Bearer tw-abc.DEF_123"), calls);
  }

  @Test
  void withoutATokenNoAuthorizationIsSent() throws Exception {
    assertEquals(List.of("Abort -", "Generate -", "Session -"), callsSeen(ConnectOptions.plaintext()));
  }

  @Test
  void aCallsOwnAuthorizationWins() {
    Metadata own = new Metadata();
    own.put(BearerToken.AUTHORIZATION, "Bearer call-token");
    try (TokenwireClient client =
        TokenwireClient.connect(target, ConnectOptions.builder().bearerToken("client-token").build())) {
      client.generationStub().withInterceptors(MetadataUtils.newAttachHeadersInterceptor(own))
          .abort(AbortRequest.newBuilder().setRequestId("x").build());
      client.abort("y");
    }
    assertEquals(List.of("Abort Bearer call-token", "Abort Bearer client-token"), seen);
  }

  @Test
  void tlsReallySpeaksTls() {
    try (TokenwireClient client = TokenwireClient.connect(target, ConnectOptions.builder().tls().build())) {
      StatusRuntimeException error =
          assertThrows(StatusRuntimeException.class, () -> client.withTimeout(WAIT).abort("x"));
      assertEquals(Status.Code.UNAVAILABLE, error.getStatus().getCode());
    }
    assertEquals(List.of(), seen);
  }

  @Test
  void badTokensAreRefusedWithoutEchoingThem() {
    for (String token : List.of("", "has space", "line\r\nbreak", "tab\tin", "é-not-ascii",
        "a".repeat(BearerToken.MAX_BYTES + 1))) {
      IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
          () -> ConnectOptions.builder().bearerToken(token), token);
      assertTrue(token.length() < 3 || !error.getMessage().contains(token), error.getMessage());
    }
    assertTrue(ConnectOptions.builder().bearerToken("a".repeat(BearerToken.MAX_BYTES)).build().hasBearerToken());
    assertFalse(ConnectOptions.builder().bearerToken("secret-tok").build().toString().contains("secret-tok"));
  }

  @Test
  void filesThatCannotServeAreRefusedAtConnect(@TempDir Path dir) throws Exception {
    Path notPem = Files.writeString(dir.resolve("not.pem"), "not a certificate\n");
    Path broken = Files.writeString(dir.resolve("broken.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    Path sec1 = Files.writeString(dir.resolve("sec1.key"),
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n");
    Path absent = dir.resolve("absent.pem");

    assertThrows(UncheckedIOException.class,
        () -> TokenwireClient.connect(target, ConnectOptions.builder().trustedCa(absent).build()));
    assertContains("no PEM certificate", connectError(ConnectOptions.builder().trustedCa(notPem).build()));
    assertContains("bad certificate", connectError(ConnectOptions.builder().trustedCa(broken).build()));
    String keyError = connectError(ConnectOptions.builder().clientCertificate(notPem, sec1).build());
    assertContains("\"EC PRIVATE KEY\"", keyError);
    assertContains("openssl pkcs8 -topk8", keyError);
    assertContains("holds no PEM key", connectError(ConnectOptions.builder().clientCertificate(notPem, notPem).build()));
  }

  private static void assertContains(String part, String message) {
    assertTrue(message.contains(part), () -> "\"" + part + "\" not in: " + message);
  }

  private String connectError(ConnectOptions options) {
    return assertThrows(IllegalArgumentException.class, () -> TokenwireClient.connect(target, options))
        .getMessage();
  }

  @Test
  void fromEnvironmentReadsTheExamplesVariables() {
    ConnectOptions none = ConnectOptions.fromEnvironment(Map.of());
    assertFalse(none.tls());
    assertFalse(none.hasBearerToken());
    ConnectOptions blank = ConnectOptions.fromEnvironment(Map.of("TOKENWIRE_TLS_CA", "", "TOKENWIRE_TOKEN", " "));
    assertFalse(blank.tls());
    assertFalse(blank.hasBearerToken());

    ConnectOptions ca = ConnectOptions.fromEnvironment(Map.of("TOKENWIRE_TLS_CA", "ca.pem", "TOKENWIRE_TOKEN", "t"));
    assertTrue(ca.tls());
    assertEquals(Path.of("ca.pem"), ca.caFile().orElseThrow());
    assertTrue(ca.certFile().isEmpty());
    assertTrue(ca.hasBearerToken());

    ConnectOptions mtls = ConnectOptions.fromEnvironment(
        Map.of("TOKENWIRE_CLIENT_CERT", "c.pem", "TOKENWIRE_CLIENT_KEY", "k.pem"));
    assertTrue(mtls.tls());
    assertTrue(mtls.caFile().isEmpty());
    assertEquals(Path.of("c.pem"), mtls.certFile().orElseThrow());
    assertEquals(Path.of("k.pem"), mtls.keyFile().orElseThrow());

    assertThrows(IllegalArgumentException.class,
        () -> ConnectOptions.fromEnvironment(Map.of("TOKENWIRE_CLIENT_CERT", "c.pem")));
    assertThrows(IllegalArgumentException.class,
        () -> ConnectOptions.fromEnvironment(Map.of("TOKENWIRE_CLIENT_KEY", "k.pem")));
  }
}
