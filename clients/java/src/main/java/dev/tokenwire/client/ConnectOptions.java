package dev.tokenwire.client;

import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * How {@link TokenwireClient#connect(String, ConnectOptions)} connects: plaintext (the default) or
 * TLS, optionally with a client certificate (mTLS), and optionally a bearer token. Immutable.
 *
 * <pre>{@code
 * ConnectOptions options = ConnectOptions.builder()
 *     .trustedCa(Path.of("ca.pem"))                                    // TLS, verified with this CA
 *     .clientCertificate(Path.of("client.pem"), Path.of("client.key")) // mTLS
 *     .bearerToken(System.getenv("TOKENWIRE_TOKEN"))
 *     .build();
 * }</pre>
 */
public final class ConnectOptions {
  private static final ConnectOptions PLAINTEXT = builder().build();

  private final boolean tls;
  private final Path caFile;
  private final Path certFile;
  private final Path keyFile;
  private final String token;

  private ConnectOptions(Builder b) {
    this.tls = b.tls || b.caFile != null || b.certFile != null;
    this.caFile = b.caFile;
    this.certFile = b.certFile;
    this.keyFile = b.keyFile;
    this.token = b.token;
  }

  /** No TLS, no token. */
  public static ConnectOptions plaintext() {
    return PLAINTEXT;
  }

  public static Builder builder() {
    return new Builder();
  }

  /**
   * The options the examples use, from the process environment: see {@link
   * #fromEnvironment(Map)}.
   */
  public static ConnectOptions fromEnvironment() {
    return fromEnvironment(System.getenv());
  }

  /**
   * Options from environment variables (blank ones count as unset): {@code TOKENWIRE_TLS_CA} (a
   * PEM CA file; turns TLS on), {@code TOKENWIRE_CLIENT_CERT} + {@code TOKENWIRE_CLIENT_KEY} (client
   * certificate chain and PKCS#8 key; turn TLS on too, verified with the JDK's roots unless
   * TOKENWIRE_TLS_CA is set), {@code TOKENWIRE_TOKEN} (bearer token).
   *
   * @throws IllegalArgumentException when only one of TOKENWIRE_CLIENT_CERT and TOKENWIRE_CLIENT_KEY
   *     is set, or the token is malformed
   */
  public static ConnectOptions fromEnvironment(Map<String, String> env) {
    Builder b = builder();
    Optional<String> ca = get(env, "TOKENWIRE_TLS_CA");
    Optional<String> cert = get(env, "TOKENWIRE_CLIENT_CERT");
    Optional<String> key = get(env, "TOKENWIRE_CLIENT_KEY");
    ca.ifPresent(path -> b.trustedCa(Path.of(path)));
    if (cert.isPresent() != key.isPresent()) {
      throw new IllegalArgumentException("TOKENWIRE_CLIENT_CERT and TOKENWIRE_CLIENT_KEY go together (both or neither)");
    }
    if (cert.isPresent()) {
      b.clientCertificate(Path.of(cert.get()), Path.of(key.get()));
    }
    get(env, "TOKENWIRE_TOKEN").ifPresent(b::bearerToken);
    return b.build();
  }

  private static Optional<String> get(Map<String, String> env, String name) {
    String value = env.get(name);
    return value == null || value.isBlank() ? Optional.empty() : Optional.of(value);
  }

  /** Whether the channel uses TLS. */
  public boolean tls() {
    return tls;
  }

  /** The PEM CA bundle that verifies the server; empty: the JDK's default trust store. */
  public Optional<Path> caFile() {
    return Optional.ofNullable(caFile);
  }

  /** The PEM client certificate chain (mTLS), if any. */
  public Optional<Path> certFile() {
    return Optional.ofNullable(certFile);
  }

  /** The PKCS#8 PEM key of {@link #certFile()}, if any. */
  public Optional<Path> keyFile() {
    return Optional.ofNullable(keyFile);
  }

  /** Whether a bearer token is set (the token itself is not exposed). */
  public boolean hasBearerToken() {
    return token != null;
  }

  Optional<BearerToken> bearerToken() {
    return token == null ? Optional.empty() : Optional.of(BearerToken.of(token));
  }

  /** Never shows the token. */
  @Override
  public String toString() {
    return "ConnectOptions[tls=" + tls + ", caFile=" + caFile + ", certFile=" + certFile
        + ", keyFile=" + keyFile + ", bearerToken=" + (token == null ? "none" : "set") + "]";
  }

  /** Builds {@link ConnectOptions}; every setting is optional. */
  public static final class Builder {
    private boolean tls;
    private Path caFile;
    private Path certFile;
    private Path keyFile;
    private String token;

    private Builder() {}

    /** TLS, verifying the server with the JDK's default trust store (unless {@link #trustedCa}). */
    public Builder tls() {
      this.tls = true;
      return this;
    }

    /** TLS, verifying the server with this PEM CA bundle instead of the JDK's roots. */
    public Builder trustedCa(Path caFile) {
      this.caFile = Objects.requireNonNull(caFile, "caFile");
      return this;
    }

    /**
     * TLS with a client certificate (mTLS): a PEM certificate chain and its private key as PKCS#8
     * PEM ({@code -----BEGIN PRIVATE KEY-----}; convert others with {@code openssl pkcs8 -topk8
     * -nocrypt}).
     */
    public Builder clientCertificate(Path certFile, Path keyFile) {
      this.certFile = Objects.requireNonNull(certFile, "certFile");
      this.keyFile = Objects.requireNonNull(keyFile, "keyFile");
      return this;
    }

    /**
     * Sends {@code authorization: Bearer <token>} with every call, on TLS and plaintext channels.
     *
     * @throws IllegalArgumentException unless the token is 1 to {@value BearerToken#MAX_BYTES}
     *     bytes of visible ASCII
     */
    public Builder bearerToken(String token) {
      BearerToken.check(token);
      this.token = token;
      return this;
    }

    public ConnectOptions build() {
      return new ConnectOptions(this);
    }
  }
}
