// Connection security: TLS / mTLS settings for the HTTP/2 connection and the
// bearer token interceptor. Plaintext without a token stays the default.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { SecureClientSessionOptions } from "node:http2";
import { createSecureContext } from "node:tls";

import type { Interceptor } from "@connectrpc/connect";

/**
 * TLS settings. Every file is PEM. Without `caFile` the server is verified
 * against Node's default roots (its bundled Mozilla store, plus
 * `NODE_EXTRA_CA_CERTS`); `certFile` + `keyFile` present a client certificate
 * (mutual TLS).
 */
export interface TlsOptions {
  /** CA bundle that the server's certificate must chain to. */
  caFile?: string;
  /** Client certificate chain, for servers that require one (mTLS); needs `keyFile`. */
  certFile?: string;
  /** The private key of `certFile` (PKCS#8, SEC1 or PKCS#1 PEM). */
  keyFile?: string;
}

/** The longest token sent; the server refuses longer ones unread. */
export const MAX_TOKEN_BYTES = 4096;

/** The metadata key of the bearer token. */
export const AUTHORIZATION_HEADER = "authorization";

// RFC 6750 b64token characters plus the rest of visible ASCII: anything that a
// header value carries as is. No whitespace or control characters.
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

/** Throws unless `token` can be sent as a bearer token. Never puts the token in the message. */
export function checkToken(token: string): void {
  if (token.length === 0) {
    throw new Error("token is empty");
  }
  if (Buffer.byteLength(token, "utf8") > MAX_TOKEN_BYTES) {
    throw new Error(`token is longer than ${MAX_TOKEN_BYTES} bytes`);
  }
  if (!TOKEN_CHARS.test(token)) {
    throw new Error("token must be visible ASCII without whitespace");
  }
}

/**
 * An interceptor that sends `authorization: Bearer <token>` with every call,
 * unary and streaming, on TLS and plaintext connections alike. A call that
 * sets its own `authorization` header keeps it.
 */
export function bearerToken(token: string): Interceptor {
  checkToken(token);
  const value = `Bearer ${token}`;
  return (next) => async (request) => {
    if (!request.header.has(AUTHORIZATION_HEADER)) {
      request.header.set(AUTHORIZATION_HEADER, value);
    }
    return next(request);
  };
}

function readPem(option: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`tls.${option}: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

/**
 * Throws unless `pem` holds at least one certificate and all of them parse:
 * Node's TLS skips what it cannot read in a CA bundle, which would turn a
 * wrong file into "unable to verify" errors at the first call.
 */
function checkCaBundle(pem: Buffer): void {
  const blocks = pem.toString("latin1").match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    throw new Error("tls.caFile: no PEM certificate in the file");
  }
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (error) {
      throw new Error(`tls.caFile: bad certificate: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/**
 * Node HTTP/2 session options for `tls`: the files are read and checked now
 * (a missing file, bad PEM or a key that does not match the certificate
 * throws here rather than on the first call).
 */
export function tlsSessionOptions(tls: TlsOptions): SecureClientSessionOptions {
  const { caFile, certFile, keyFile } = tls;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new Error("tls.certFile and tls.keyFile go together (both or neither)");
  }
  const ca = caFile === undefined ? undefined : readPem("caFile", caFile);
  if (ca !== undefined) {
    checkCaBundle(ca);
  }
  const cert = certFile === undefined ? undefined : readPem("certFile", certFile);
  const key = keyFile === undefined ? undefined : readPem("keyFile", keyFile);
  try {
    return { secureContext: createSecureContext({ ca, cert, key }) };
  } catch (error) {
    throw new Error(`tls: bad certificate or key: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** What {@link optionsFromEnvironment} reads. */
export interface EnvironmentSettings {
  /** TOKENWIRE_TARGET, default "127.0.0.1:50051". */
  readonly target: string;
  /** TLS from TOKENWIRE_TLS_CA / TOKENWIRE_CLIENT_CERT / TOKENWIRE_CLIENT_KEY; undefined for plaintext. */
  readonly tls: TlsOptions | undefined;
  /** TOKENWIRE_TOKEN. */
  readonly token: string | undefined;
}

/**
 * The connection settings of the examples, from environment variables:
 * TOKENWIRE_TARGET; TOKENWIRE_TLS_CA (a CA file: turns TLS on);
 * TOKENWIRE_CLIENT_CERT + TOKENWIRE_CLIENT_KEY (client certificate: turn TLS on
 * too, verified with the default roots unless TOKENWIRE_TLS_CA is set);
 * TOKENWIRE_TOKEN (bearer token). Empty variables count as unset.
 */
export function optionsFromEnvironment(env: NodeJS.ProcessEnv = process.env): EnvironmentSettings {
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === "" ? undefined : value;
  };
  const caFile = get("TOKENWIRE_TLS_CA");
  const certFile = get("TOKENWIRE_CLIENT_CERT");
  const keyFile = get("TOKENWIRE_CLIENT_KEY");
  const tlsOn = caFile !== undefined || certFile !== undefined || keyFile !== undefined;
  return {
    target: get("TOKENWIRE_TARGET") ?? "127.0.0.1:50051",
    tls: tlsOn ? { caFile, certFile, keyFile } : undefined,
    token: get("TOKENWIRE_TOKEN"),
  };
}
