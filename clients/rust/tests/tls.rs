//! TLS, mTLS and the bearer token against a fake HTTP/2 server on 127.0.0.1.
//!
//! The server records the path and `authorization` header of every call and
//! answers each with status UNIMPLEMENTED (trailers only): enough to see
//! what a unary, a server-streaming and a bidirectional call carried. The
//! certificates are made by the system `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokenwire_client::{Client, Code, ConnectError, ConnectOptions, request};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

const TOKEN: &str = "tw-rust-test-token";

/// A directory of PEM files, removed on drop.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("these tests need the openssl command");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const LEAF: &str = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n";

/// Signs `<name>.pem` (key `<name>.key`) with `ca` (self-signed when `None`).
fn issue(dir: &Path, name: &str, extensions: &str, ca: Option<&str>) {
    let ext = format!("{name}.ext");
    std::fs::write(dir.join(&ext), extensions).unwrap();
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subject,
        ],
    );
    let mut args = vec![
        "x509", "-req", "-in", &csr, "-days", "1", "-sha256", "-extfile", &ext, "-out", &pem,
    ];
    let (ca_pem, ca_key);
    match ca {
        Some(ca) => {
            (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
            args.extend(["-CA", &ca_pem, "-CAkey", &ca_key, "-set_serial", "2"]);
        }
        None => args.extend(["-signkey", &key, "-set_serial", "1"]),
    }
    openssl(dir, &args);
}

/// A CA with a server certificate for localhost and a client certificate,
/// and an unrelated CA.
fn make_pki() -> Pki {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tokenwire-rust-tls-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n";
    issue(&dir, "ca", ca, None);
    issue(&dir, "other-ca", ca, None);
    let server =
        format!("{LEAF}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n");
    issue(&dir, "server", &server, Some("ca"));
    issue(
        &dir,
        "client",
        &format!("{LEAF}extendedKeyUsage=clientAuth\n"),
        Some("ca"),
    );
    std::fs::write(dir.join("not.pem"), "not a certificate\n").unwrap();
    Pki { dir }
}

/// `(path, authorization header)` of every call the fake server received.
type Calls = Arc<Mutex<Vec<(String, Option<String>)>>>;

async fn serve_h2<T: AsyncRead + AsyncWrite + Unpin>(io: T, calls: Calls) {
    let Ok(mut connection) = h2::server::handshake(io).await else {
        return;
    };
    while let Some(Ok((request, mut respond))) = connection.accept().await {
        let auth = request
            .headers()
            .get("authorization")
            .map(|value| value.to_str().unwrap().to_owned());
        calls
            .lock()
            .unwrap()
            .push((request.uri().path().to_owned(), auth));
        let response = http::Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", "12")
            .body(())
            .unwrap();
        let _ = respond.send_response(response, true);
    }
}

/// Starts the fake server: TLS requiring a client certificate from the
/// PKI's CA when `mtls`, plaintext otherwise. Returns its port.
async fn start(pki: Option<&Pki>, calls: Calls) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = pki.map(|pki| {
        let provider = Arc::new(crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(pki.path("ca.pem")).unwrap())
            .unwrap();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .unwrap();
        let chain = CertificateDer::pem_file_iter(pki.path("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(pki.path("server.key")).unwrap();
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    });
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let calls = calls.clone();
            match &acceptor {
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            serve_h2(tls, calls).await;
                        }
                    });
                }
                None => {
                    tokio::spawn(serve_h2(tcp, calls));
                }
            }
        }
    });
    port
}

/// Makes a unary (Abort), a server-streaming (Generate) and a bidi
/// (Session) call; each must reach the fake server (UNIMPLEMENTED).
async fn three_calls(client: &Client) {
    let abort = client.abort("x").await.unwrap_err();
    assert_eq!(abort.code(), Code::Unimplemented, "{abort:?}");
    let generate = client
        .generate(request::text("hi").max_tokens(1))
        .await
        .unwrap_err();
    assert_eq!(generate.code(), Code::Unimplemented, "{generate:?}");
    let session = client.session();
    let mut generation = session.start(request::text("hi").id("s")).unwrap();
    let failed = generation.message().await.unwrap_err();
    assert_eq!(failed.code(), Code::Unimplemented, "{failed:?}");
}

const PATHS: [&str; 3] = [
    "/tokenwire.v1.GenerationService/Abort",
    "/tokenwire.v1.GenerationService/Generate",
    "/tokenwire.v1.GenerationService/Session",
];

fn recorded(calls: &Calls) -> Vec<(String, Option<String>)> {
    calls.lock().unwrap().clone()
}

fn expected(auth: Option<&str>) -> Vec<(String, Option<String>)> {
    PATHS
        .iter()
        .map(|path| ((*path).to_owned(), auth.map(str::to_owned)))
        .collect()
}

#[tokio::test]
async fn mtls_with_token_on_every_kind_of_call() {
    let pki = make_pki();
    let calls = Calls::default();
    let port = start(Some(&pki), calls.clone()).await;
    let options = ConnectOptions::new()
        .ca_file(pki.path("ca.pem"))
        .client_cert(pki.path("client.pem"), pki.path("client.key"))
        .token(TOKEN);
    let client = Client::connect_with(format!("localhost:{port}"), &options)
        .await
        .unwrap();
    three_calls(&client).await;
    assert_eq!(recorded(&calls), expected(Some(&format!("Bearer {TOKEN}"))));
}

#[tokio::test]
async fn domain_name_overrides_the_target_host() {
    let pki = make_pki();
    let calls = Calls::default();
    let port = start(Some(&pki), calls.clone()).await;
    let options = ConnectOptions::new()
        .ca_file(pki.path("ca.pem"))
        .client_cert(pki.path("client.pem"), pki.path("client.key"));
    // The certificate names localhost and 127.0.0.1, not this name.
    let wrong = options.clone().domain_name("elsewhere.test");
    let refused = Client::connect_with(format!("127.0.0.1:{port}"), &wrong).await;
    assert!(
        matches!(refused, Err(ConnectError::Transport(_))),
        "{refused:?}"
    );
    let right = options.domain_name("localhost");
    let client = Client::connect_with(format!("127.0.0.1:{port}"), &right)
        .await
        .unwrap();
    three_calls(&client).await;
    assert_eq!(recorded(&calls), expected(None));
}

#[tokio::test]
async fn mtls_server_refuses_a_client_without_certificate() {
    let pki = make_pki();
    let calls = Calls::default();
    let port = start(Some(&pki), calls.clone()).await;
    let options = ConnectOptions::new()
        .ca_file(pki.path("ca.pem"))
        .token(TOKEN);
    // TLS 1.3 finishes the client's side of the handshake before the server
    // checks the certificate, so the refusal may surface on the first call.
    match Client::connect_with(format!("localhost:{port}"), &options).await {
        Err(ConnectError::Transport(_)) => {}
        Err(other) => panic!("{other:?}"),
        Ok(client) => {
            let failed = client.abort("x").await.unwrap_err();
            assert_ne!(failed.code(), Code::Unimplemented, "{failed:?}");
        }
    }
    assert_eq!(recorded(&calls), []);
}

#[tokio::test]
async fn untrusted_server_is_refused() {
    let pki = make_pki();
    let calls = Calls::default();
    let port = start(Some(&pki), calls.clone()).await;
    let options = ConnectOptions::new()
        .ca_file(pki.path("other-ca.pem"))
        .client_cert(pki.path("client.pem"), pki.path("client.key"))
        .token(TOKEN);
    let refused = Client::connect_with(format!("localhost:{port}"), &options).await;
    assert!(
        matches!(refused, Err(ConnectError::Transport(_))),
        "{refused:?}"
    );
    assert_eq!(recorded(&calls), []);
}

#[tokio::test]
async fn token_over_plaintext() {
    let calls = Calls::default();
    let port = start(None, calls.clone()).await;
    let target = format!("127.0.0.1:{port}");
    let with_token = ConnectOptions::new().token(TOKEN);
    three_calls(&Client::connect_with(&target, &with_token).await.unwrap()).await;
    assert_eq!(recorded(&calls), expected(Some(&format!("Bearer {TOKEN}"))));
    calls.lock().unwrap().clear();
    three_calls(&Client::connect(&target).await.unwrap()).await;
    assert_eq!(recorded(&calls), expected(None));
}

#[test]
fn bad_tls_material_is_refused_before_connecting() {
    let pki = make_pki();
    // A key file without a key: tonic refuses the identity.
    let options = ConnectOptions::new()
        .ca_file(pki.path("ca.pem"))
        .client_cert(pki.path("client.pem"), pki.path("not.pem"));
    let refused = options.endpoint("localhost:1");
    assert!(
        matches!(refused, Err(ConnectError::Transport(_))),
        "{refused:?}"
    );
    // A CA file without a certificate.
    let refused = ConnectOptions::new()
        .ca_file(pki.path("not.pem"))
        .endpoint("localhost:1");
    assert!(
        matches!(&refused, Err(ConnectError::Invalid(m)) if m.contains("holds no PEM certificate")),
        "{refused:?}"
    );
    // Good files make an https endpoint.
    let endpoint = ConnectOptions::new()
        .ca_file(pki.path("ca.pem"))
        .client_cert(pki.path("client.pem"), pki.path("client.key"))
        .endpoint("localhost:1")
        .unwrap();
    assert_eq!(endpoint.uri().scheme_str(), Some("https"));
}
