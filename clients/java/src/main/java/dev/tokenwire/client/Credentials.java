package dev.tokenwire.client;

import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.TlsChannelCredentials;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Channel credentials for {@link ConnectOptions}; the files are read and checked here. */
final class Credentials {
  /** PEM files larger than this are not certificates or keys we can use. */
  static final long MAX_PEM_BYTES = 1 << 20;

  private static final Pattern PEM_LABEL = Pattern.compile("-----BEGIN ([A-Z0-9 ]+)-----");

  private Credentials() {}

  static ChannelCredentials of(ConnectOptions options) {
    if (!options.tls()) {
      return InsecureChannelCredentials.create();
    }
    TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder();
    try {
      if (options.caFile().isPresent()) {
        tls.trustManager(new ByteArrayInputStream(caBundle(options.caFile().get())));
      }
      if (options.certFile().isPresent() && options.keyFile().isPresent()) {
        byte[] key = pkcs8Key(options.keyFile().get());
        byte[] chain = read("client certificate", options.certFile().get());
        requireCertificates("client certificate", options.certFile().get(), chain);
        tls.keyManager(new ByteArrayInputStream(chain), new ByteArrayInputStream(key));
      }
    } catch (IOException e) {
      // Only the in-memory streams above can throw, and they do not.
      throw new UncheckedIOException(e);
    }
    return tls.build();
  }

  private static byte[] read(String what, Path path) {
    try {
      if (Files.size(path) > MAX_PEM_BYTES) {
        throw new IllegalArgumentException(what + " file " + path + " is larger than " + MAX_PEM_BYTES + " bytes");
      }
      return Files.readAllBytes(path);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the " + what + " file " + path, e);
    }
  }

  private static byte[] caBundle(Path path) {
    byte[] pem = read("CA", path);
    requireCertificates("CA", path, pem);
    return pem;
  }

  /**
   * The JDK and Netty skip what they cannot parse in a PEM bundle: a wrong file would only show
   * as "unable to verify" on the first call. Parse it here instead.
   */
  private static void requireCertificates(String what, Path path, byte[] pem) {
    if (!new String(pem, StandardCharsets.US_ASCII).contains("-----BEGIN CERTIFICATE-----")) {
      throw new IllegalArgumentException(what + " file " + path + " holds no PEM certificate");
    }
    try {
      if (CertificateFactory.getInstance("X.509").generateCertificates(new ByteArrayInputStream(pem)).isEmpty()) {
        throw new IllegalArgumentException(what + " file " + path + " holds no PEM certificate");
      }
    } catch (CertificateException e) {
      throw new IllegalArgumentException(what + " file " + path + " holds a bad certificate: " + e.getMessage(), e);
    }
  }

  /** The key file, if it is an unencrypted PKCS#8 PEM key (all grpc-java's TLS reads). */
  private static byte[] pkcs8Key(Path path) {
    byte[] pem = read("client key", path);
    Matcher label = PEM_LABEL.matcher(new String(pem, StandardCharsets.US_ASCII));
    if (!label.find()) {
      throw new IllegalArgumentException("client key file " + path + " holds no PEM key");
    }
    if (!label.group(1).equals("PRIVATE KEY")) {
      throw new IllegalArgumentException("client key file " + path + " holds a \"" + label.group(1)
          + "\"; an unencrypted PKCS#8 key (\"PRIVATE KEY\") is needed: convert it with"
          + " openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8");
    }
    return pem;
  }
}
