package tokenwire_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
	"github.com/tokenwire/tokenwire/clients/go/tokenwire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

const goodToken = "tw-good-token"

// pki is a throwaway CA with a server certificate for localhost and a client
// certificate, written as PEM files.
type pki struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
	pool                                                 *x509.CertPool
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue writes a key and a certificate signed by parent (self-signed when
// parent is nil) and returns them for signing further certificates.
func issue(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *x509.Certificate,
	parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.Subject = pkix.Name{CommonName: name}
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(dir, name+".key"), "PRIVATE KEY", keyDER)
	return cert, key
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := issue(t, dir, "ca", &x509.Certificate{
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	issue(t, dir, "server", &x509.Certificate{
		DNSNames: []string{"localhost"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
	issue(t, dir, "client", &x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	at := func(name string) string { return filepath.Join(dir, name) }
	return pki{at("ca.pem"), at("server.pem"), at("server.key"), at("client.pem"), at("client.key"), pool}
}

// authServer is fakeServer behind a bearer-token check, as tokenwire serve
// does it: UNAUTHENTICATED without goodToken. It records every header seen.
type authServer struct {
	mu      sync.Mutex
	headers []string
}

func (a *authServer) check(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	got := strings.Join(md.Get("authorization"), ",")
	a.mu.Lock()
	a.headers = append(a.headers, got)
	a.mu.Unlock()
	if got != "Bearer "+goodToken {
		return status.Error(codes.Unauthenticated, "missing or unknown bearer token")
	}
	return nil
}

func (a *authServer) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.headers...)
}

// serve starts fakeServer with these server options (nil tlsConf:
// plaintext) and returns the dial option that reaches it.
func serve(t *testing.T, tlsConf *tls.Config, auth *authServer) tokenwire.ConnectOption {
	t.Helper()
	opts := []grpc.ServerOption{
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := auth.check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := auth.check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
	if tlsConf != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConf)))
	}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(opts...)
	pb.RegisterGenerationServiceServer(srv, fakeServer{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	dialer := func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
	return tokenwire.WithDialOptions(grpc.WithContextDialer(dialer))
}

// mtlsServer requires a client certificate signed by p's CA.
func mtlsServer(t *testing.T, p pki, auth *authServer) tokenwire.ConnectOption {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, &tls.Config{
		Certificates: []tls.Certificate{pair}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS12,
	}, auth)
}

func connect(t *testing.T, opts ...tokenwire.ConnectOption) *tokenwire.Client {
	t.Helper()
	client, err := tokenwire.Connect("passthrough:///bufnet", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// exercise makes a unary, a server-streaming and a bidi call.
func exercise(t *testing.T, client *tokenwire.Client) error {
	t.Helper()
	ctx := testContext(t)
	if _, err := client.Abort(ctx, "unknown"); err != nil {
		return err
	}
	if _, err := client.Complete(ctx, tokenwire.TextRequest("one two")); err != nil {
		return err
	}
	session, err := client.OpenSession(ctx)
	if err != nil {
		return err
	}
	defer session.Close()
	gen, err := session.Start(tokenwire.TextRequest("three", tokenwire.WithRequestID("s")))
	if err != nil {
		return err
	}
	res, err := gen.Collect()
	if err != nil {
		return err
	}
	if res.Text != "three " {
		t.Fatalf("session text %q", res.Text)
	}
	return nil
}

func TestConnectMTLSWithToken(t *testing.T) {
	p := newPKI(t)
	auth := &authServer{}
	client := connect(t, mtlsServer(t, p, auth), tokenwire.WithTLS(p.caFile),
		tokenwire.WithClientCert(p.clientCert, p.clientKey), tokenwire.WithServerName("localhost"),
		tokenwire.WithToken(goodToken))
	if err := exercise(t, client); err != nil {
		t.Fatal(err)
	}
	want := "Bearer " + goodToken
	if got := auth.seen(); len(got) != 3 || got[0] != want || got[1] != want || got[2] != want {
		t.Fatalf("authorization headers %q", got)
	}
}

func TestConnectMTLSRefusedWithoutClientCert(t *testing.T) {
	p := newPKI(t)
	auth := &authServer{}
	client := connect(t, mtlsServer(t, p, auth), tokenwire.WithTLS(p.caFile),
		tokenwire.WithServerName("localhost"), tokenwire.WithToken(goodToken))
	if err := exercise(t, client); status.Code(err) != codes.Unavailable {
		t.Fatalf("want UNAVAILABLE (handshake refused), got %v", err)
	}
	if got := auth.seen(); len(got) != 0 {
		t.Fatalf("a call reached the server: %q", got)
	}
}

func TestConnectTLSRefusesUntrustedServer(t *testing.T) {
	p, other := newPKI(t), newPKI(t)
	client := connect(t, mtlsServer(t, p, &authServer{}), tokenwire.WithTLS(other.caFile),
		tokenwire.WithClientCert(p.clientCert, p.clientKey), tokenwire.WithServerName("localhost"),
		tokenwire.WithToken(goodToken))
	err := exercise(t, client)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("want UNAVAILABLE for an unknown CA, got %v", err)
	}
}

func TestConnectTLSChecksServerName(t *testing.T) {
	p := newPKI(t)
	client := connect(t, mtlsServer(t, p, &authServer{}), tokenwire.WithTLS(p.caFile),
		tokenwire.WithClientCert(p.clientCert, p.clientKey), tokenwire.WithToken(goodToken))
	// The target's host is "bufnet"; the certificate names localhost.
	if err := exercise(t, client); status.Code(err) != codes.Unavailable {
		t.Fatalf("want UNAVAILABLE for a name mismatch, got %v", err)
	}
}

func TestConnectTokenOverPlaintext(t *testing.T) {
	auth := &authServer{}
	dial := serve(t, nil, auth)
	if err := exercise(t, connect(t, dial, tokenwire.WithToken(goodToken))); err != nil {
		t.Fatal(err)
	}
	if err := exercise(t, connect(t, dial)); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("want UNAUTHENTICATED without a token, got %v", err)
	}
	if err := exercise(t, connect(t, dial, tokenwire.WithToken("tw-wrong"))); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("want UNAUTHENTICATED with a wrong token, got %v", err)
	}
	want := []string{"Bearer " + goodToken, "Bearer " + goodToken, "Bearer " + goodToken, "", "Bearer tw-wrong"}
	if got := auth.seen(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("authorization headers %q, want %q", got, want)
	}
}

func TestConnectRejectsBadOptions(t *testing.T) {
	p := newPKI(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := "tw-secret-" + strings.Repeat("x", 8)
	for name, tc := range map[string]struct {
		opts []tokenwire.ConnectOption
		want string
	}{
		"empty token":          {[]tokenwire.ConnectOption{tokenwire.WithToken("")}, "empty bearer token"},
		"token with space":     {[]tokenwire.ConnectOption{tokenwire.WithToken(secret + " x")}, "offset 18"},
		"token with newline":   {[]tokenwire.ConnectOption{tokenwire.WithToken(secret + "\n")}, "offset 18"},
		"non-ASCII token":      {[]tokenwire.ConnectOption{tokenwire.WithToken(secret + "é")}, "offset 18"},
		"token too long":       {[]tokenwire.ConnectOption{tokenwire.WithToken(strings.Repeat("t", 4097))}, "4096"},
		"missing CA file":      {[]tokenwire.ConnectOption{tokenwire.WithTLS(p.caFile + ".missing")}, "no such file"},
		"CA file without PEM":  {[]tokenwire.ConnectOption{tokenwire.WithTLS(notPEM)}, "holds no PEM certificate"},
		"cert without key":     {[]tokenwire.ConnectOption{tokenwire.WithClientCert(p.clientCert, "")}, "both"},
		"key without cert":     {[]tokenwire.ConnectOption{tokenwire.WithClientCert("", p.clientKey)}, "both"},
		"key of another cert":  {[]tokenwire.ConnectOption{tokenwire.WithClientCert(p.clientCert, p.serverKey)}, "does not match"},
		"server name, no TLS":  {[]tokenwire.ConnectOption{tokenwire.WithServerName("localhost")}, "needs TLS"},
		"key file not PEM":     {[]tokenwire.ConnectOption{tokenwire.WithClientCert(p.clientCert, notPEM)}, "client certificate"},
		"cert file is missing": {[]tokenwire.ConnectOption{tokenwire.WithClientCert(notPEM+".x", p.clientKey)}, "no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			client, err := tokenwire.Connect("127.0.0.1:1", tc.opts...)
			if err == nil {
				_ = client.Close()
				t.Fatal("Connect accepted bad options")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q repeats the token", err)
			}
		})
	}
}

func TestConnectOptionsFromEnv(t *testing.T) {
	p := newPKI(t)
	auth := &authServer{}
	dial := mtlsServer(t, p, auth)
	t.Setenv(tokenwire.EnvTLSCA, p.caFile)
	t.Setenv(tokenwire.EnvClientCert, p.clientCert)
	t.Setenv(tokenwire.EnvClientKey, p.clientKey)
	t.Setenv(tokenwire.EnvToken, goodToken)
	opts := append(tokenwire.ConnectOptionsFromEnv(), dial, tokenwire.WithServerName("localhost"))
	if err := exercise(t, connect(t, opts...)); err != nil {
		t.Fatal(err)
	}

	// Without the key the certificate is refused at Connect.
	t.Setenv(tokenwire.EnvClientKey, "")
	if _, err := tokenwire.Connect("127.0.0.1:1", tokenwire.ConnectOptionsFromEnv()...); err == nil ||
		!strings.Contains(err.Error(), "both") {
		t.Fatalf("want an error for a certificate without its key, got %v", err)
	}

	// Nothing set: plaintext, no token.
	for _, name := range []string{tokenwire.EnvTLSCA, tokenwire.EnvClientCert, tokenwire.EnvToken} {
		t.Setenv(name, "")
	}
	if opts := tokenwire.ConnectOptionsFromEnv(); len(opts) != 0 {
		t.Fatalf("%d options from an empty environment", len(opts))
	}
	plain := &authServer{}
	if err := exercise(t, connect(t, serve(t, nil, plain))); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("want UNAUTHENTICATED over plaintext without a token, got %v", err)
	}
	if got := plain.seen(); len(got) != 1 || got[0] != "" {
		t.Fatalf("authorization headers %q", got)
	}
}
