//! How [`crate::Client`] reaches the server: TLS, mTLS and a bearer token.

use std::fmt;
use std::path::{Path, PathBuf};

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

/// Environment variable with the server's address (`host:port` or a URI).
pub const ENV_TARGET: &str = "TOKENWIRE_TARGET";
/// Environment variable with a PEM CA bundle; setting it turns TLS on.
pub const ENV_TLS_CA: &str = "TOKENWIRE_TLS_CA";
/// Environment variable with a PEM client certificate (mTLS), with [`ENV_CLIENT_KEY`].
pub const ENV_CLIENT_CERT: &str = "TOKENWIRE_CLIENT_CERT";
/// Environment variable with the PEM private key of [`ENV_CLIENT_CERT`].
pub const ENV_CLIENT_KEY: &str = "TOKENWIRE_CLIENT_KEY";
/// Environment variable with a bearer token.
pub const ENV_TOKEN: &str = "TOKENWIRE_TOKEN";

/// The longest bearer token the server considers; longer ones are refused
/// here rather than sent.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Connection options for [`crate::Client::connect_with`]. The default is
/// plaintext without a token.
///
/// ```no_run
/// use tokenwire_client::{Client, ConnectOptions};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let options = ConnectOptions::new()
///     .ca_file("ca.pem") // TLS, verifying the server against this CA
///     .client_cert("client.pem", "client.key") // mTLS
///     .token("tw-..."); // `authorization: Bearer tw-...` on every call
/// let client = Client::connect_with("tokenwire.example.com:50051", &options).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct ConnectOptions {
    tls: bool,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    domain_name: Option<String>,
    token: Option<String>,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("domain_name", &self.domain_name)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ConnectOptions {
    /// Plaintext, no token.
    pub fn new() -> Self {
        Self::default()
    }

    /// The options the environment asks for: `TOKENWIRE_TLS_CA` (a CA
    /// bundle; setting it turns TLS on), `TOKENWIRE_CLIENT_CERT` and
    /// `TOKENWIRE_CLIENT_KEY` (a client certificate; they turn TLS on too,
    /// verified against the system's roots when no CA is set) and
    /// `TOKENWIRE_TOKEN` (a bearer token). Unset or empty variables add
    /// nothing; connecting reports a certificate without its key and the like.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name| lookup(name).filter(|value| !value.is_empty());
        let mut options = Self::new();
        if let Some(ca) = get(ENV_TLS_CA) {
            options = options.ca_file(ca);
        }
        let (cert, key) = (get(ENV_CLIENT_CERT), get(ENV_CLIENT_KEY));
        if cert.is_some() || key.is_some() {
            options.tls = true;
            options.cert_file = cert.map(PathBuf::from);
            options.key_file = key.map(PathBuf::from);
        }
        if let Some(token) = get(ENV_TOKEN) {
            options = options.token(token);
        }
        options
    }

    /// Turns TLS on, verifying the server against the system's roots (unless
    /// [`ConnectOptions::ca_file`] names a CA bundle).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Turns TLS on, verifying the server's certificate against the PEM CA
    /// bundle in `path` (instead of the system's roots).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls = true;
        self.ca_file = Some(path.into());
        self
    }

    /// Presents the PEM client certificate (chain) in `cert` and its private
    /// key in `key` to the server (mTLS). Turns TLS on.
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = true;
        self.cert_file = Some(cert.into());
        self.key_file = Some(key.into());
        self
    }

    /// Checks the server's certificate against `name` instead of the
    /// target's host.
    pub fn domain_name(mut self, name: impl Into<String>) -> Self {
        self.domain_name = Some(name.into());
        self
    }

    /// Sends `authorization: Bearer <token>` on every call, unary and
    /// streaming, over TLS or plaintext. A token is printable ASCII without
    /// spaces, at most [`MAX_TOKEN_BYTES`]; connecting refuses any other.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The interceptor that sends the token (a no-op without one).
    pub fn bearer_auth(&self) -> Result<BearerAuth, ConnectError> {
        match &self.token {
            Some(token) => BearerAuth::new(token),
            None => Ok(BearerAuth::default()),
        }
    }

    /// The endpoint for `target` (`host:port`, or an `http://` / `https://`
    /// URI; `https://` turns TLS on) with these TLS settings. Reads the
    /// certificate files.
    pub fn endpoint(&self, target: &str) -> Result<Endpoint, ConnectError> {
        let (uri, tls) = match target.split_once("://") {
            Some(("https", _)) => (target.to_owned(), true),
            Some(_) if self.tls => {
                return Err(ConnectError::Invalid(
                    "TLS options need an https:// or host:port target".into(),
                ));
            }
            Some(_) => (target.to_owned(), false),
            None if self.tls => (format!("https://{target}"), true),
            None => (format!("http://{target}"), false),
        };
        if !tls && self.domain_name.is_some() {
            return Err(ConnectError::Invalid("a domain name needs TLS".into()));
        }
        let endpoint = Endpoint::from_shared(uri)?;
        if !tls {
            return Ok(endpoint);
        }
        Ok(endpoint.tls_config(self.tls_config()?)?)
    }

    fn tls_config(&self) -> Result<ClientTlsConfig, ConnectError> {
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_file {
            Some(path) => {
                let pem = read("TLS CA bundle", path)?;
                if !contains(&pem, b"-----BEGIN CERTIFICATE-----") {
                    return Err(ConnectError::Invalid(format!(
                        "TLS CA bundle {} holds no PEM certificate",
                        path.display()
                    )));
                }
                config.ca_certificate(Certificate::from_pem(pem))
            }
            None => config.with_native_roots(),
        };
        match (&self.cert_file, &self.key_file) {
            (None, None) => {}
            (Some(cert), Some(key)) => {
                let cert = read("TLS client certificate", cert)?;
                let key = read("TLS client key", key)?;
                config = config.identity(Identity::from_pem(cert, key));
            }
            _ => {
                return Err(ConnectError::Invalid(
                    "a client certificate needs both the certificate and the key file".into(),
                ));
            }
        }
        if let Some(name) = &self.domain_name {
            config = config.domain_name(name.clone());
        }
        Ok(config)
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|source| ConnectError::File {
        what,
        path: path.to_owned(),
        source,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Why a client could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// An option is invalid (the message says which; it never repeats a token).
    Invalid(String),
    /// A file named by an option could not be read.
    File {
        /// Which file ("TLS CA bundle", …).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The target, the TLS material or the connection was refused by the
    /// transport (its `source()` says why).
    Transport(tonic::transport::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(message) => f.write_str(message),
            Self::File { what, path, .. } => write!(f, "cannot read {what} {}", path.display()),
            Self::Transport(_) => f.write_str("cannot connect"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(_) => None,
            Self::File { source, .. } => Some(source),
            Self::Transport(source) => Some(source),
        }
    }
}

impl From<tonic::transport::Error> for ConnectError {
    fn from(error: tonic::transport::Error) -> Self {
        Self::Transport(error)
    }
}

/// The interceptor that adds `authorization: Bearer <token>` to every call;
/// without a token it adds nothing.
#[derive(Clone, Default)]
pub struct BearerAuth {
    header: Option<AsciiMetadataValue>,
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.header.as_ref().map(|_| "<redacted>");
        f.debug_struct("BearerAuth").field("token", &token).finish()
    }
}

impl BearerAuth {
    /// Sends `token`: printable ASCII without spaces, at most
    /// [`MAX_TOKEN_BYTES`] long.
    pub fn new(token: &str) -> Result<Self, ConnectError> {
        check_token(token)?;
        let mut header: AsciiMetadataValue = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| ConnectError::Invalid("the bearer token is not a valid header".into()))?;
        header.set_sensitive(true);
        Ok(Self {
            header: Some(header),
        })
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}

fn check_token(token: &str) -> Result<(), ConnectError> {
    if token.is_empty() {
        return Err(ConnectError::Invalid("empty bearer token".into()));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ConnectError::Invalid(format!(
            "bearer token longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    if let Some(offset) = token.bytes().position(|b| !b.is_ascii_graphic()) {
        return Err(ConnectError::Invalid(format!(
            "bearer token has a space, control or non-ASCII byte at offset {offset}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 18 bytes: a bad byte appended to it is at offset 18.
    const SECRET: &str = "tw-secret-xxxxxxxx";

    fn invalid<T: fmt::Debug>(result: Result<T, ConnectError>) -> String {
        match result {
            Err(ConnectError::Invalid(message)) => message,
            other => panic!("want ConnectError::Invalid, got {other:?}"),
        }
    }

    #[test]
    fn malformed_tokens_are_refused_without_repeating_them() {
        let long = "t".repeat(MAX_TOKEN_BYTES + 1);
        for (token, want) in [
            (String::new(), "empty bearer token"),
            (format!("{SECRET} x"), "offset 18"),
            (format!("{SECRET}\n"), "offset 18"),
            (format!("{SECRET}\u{e9}"), "offset 18"),
            (long, "longer than 4096 bytes"),
        ] {
            let message = invalid(ConnectOptions::new().token(token).bearer_auth());
            assert!(message.contains(want), "{message:?} does not say {want:?}");
            assert!(!message.contains(SECRET), "{message:?} repeats the token");
        }
        assert!(BearerAuth::new(&"t".repeat(MAX_TOKEN_BYTES)).is_ok());
    }

    #[test]
    fn bearer_auth_adds_a_sensitive_header() {
        let mut auth = ConnectOptions::new().token(SECRET).bearer_auth().unwrap();
        let request = auth.call(Request::new(())).unwrap();
        let header = request.metadata().get("authorization").unwrap();
        assert_eq!(header.to_str().unwrap(), format!("Bearer {SECRET}"));
        assert!(header.is_sensitive());
        assert!(!format!("{auth:?}").contains(SECRET));
        let options = ConnectOptions::new().token(SECRET);
        assert!(!format!("{options:?}").contains(SECRET));
    }

    #[test]
    fn no_token_no_header() {
        let mut auth = ConnectOptions::new().bearer_auth().unwrap();
        let request = auth.call(Request::new(())).unwrap();
        assert!(request.metadata().get("authorization").is_none());
    }

    #[test]
    fn plaintext_unless_asked() {
        let endpoint = ConnectOptions::new().endpoint("127.0.0.1:50051").unwrap();
        assert_eq!(endpoint.uri().to_string(), "http://127.0.0.1:50051/");
        let endpoint = ConnectOptions::new()
            .token(SECRET)
            .endpoint("http://127.0.0.1:50051")
            .unwrap();
        assert_eq!(endpoint.uri().scheme_str(), Some("http"));
    }

    #[test]
    fn conflicting_or_incomplete_options_are_refused() {
        let tls = ConnectOptions::new().ca_file("/nonexistent/ca.pem");
        assert!(invalid(tls.endpoint("http://localhost:1")).contains("https://"));
        let named = ConnectOptions::new().domain_name("localhost");
        assert!(invalid(named.endpoint("localhost:1")).contains("needs TLS"));
        let mut half = ConnectOptions::new().tls();
        half.cert_file = Some("client.pem".into());
        assert!(invalid(half.endpoint("localhost:1")).contains("both"));
    }

    #[test]
    fn unreadable_files_are_named() {
        let options = ConnectOptions::new().ca_file("/nonexistent/ca.pem");
        match options.endpoint("localhost:1") {
            Err(error @ ConnectError::File { .. }) => {
                assert_eq!(
                    error.to_string(),
                    "cannot read TLS CA bundle /nonexistent/ca.pem"
                );
                assert!(std::error::Error::source(&error).is_some());
            }
            other => panic!("want ConnectError::File, got {other:?}"),
        }
    }

    #[test]
    fn options_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            ConnectOptions::from_lookup(move |name| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            })
        };
        let none = env(&[(ENV_TLS_CA, ""), (ENV_TOKEN, "")]);
        assert!(!none.tls && none.ca_file.is_none() && none.token.is_none());
        assert!(none.cert_file.is_none() && none.key_file.is_none());

        let all = env(&[
            (ENV_TLS_CA, "ca.pem"),
            (ENV_CLIENT_CERT, "client.pem"),
            (ENV_CLIENT_KEY, "client.key"),
            (ENV_TOKEN, "tw-token"),
        ]);
        assert!(all.tls);
        assert_eq!(all.ca_file, Some("ca.pem".into()));
        assert_eq!(all.cert_file, Some("client.pem".into()));
        assert_eq!(all.key_file, Some("client.key".into()));
        assert_eq!(all.token.as_deref(), Some("tw-token"));

        // A client certificate alone turns TLS on (system roots); without
        // its key, connecting is refused.
        let cert_only = env(&[(ENV_CLIENT_CERT, "client.pem")]);
        assert!(cert_only.tls && cert_only.ca_file.is_none());
        assert!(invalid(cert_only.endpoint("localhost:1")).contains("both"));
    }
}
