package tokenwire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Environment variables read by [ConnectOptionsFromEnv] (and the examples).
const (
	EnvTarget     = "TOKENWIRE_TARGET"      // host:port of the server
	EnvTLSCA      = "TOKENWIRE_TLS_CA"      // PEM CA bundle; setting it turns TLS on
	EnvClientCert = "TOKENWIRE_CLIENT_CERT" // PEM client certificate (mTLS), with EnvClientKey
	EnvClientKey  = "TOKENWIRE_CLIENT_KEY"  // PEM private key of that certificate
	EnvToken      = "TOKENWIRE_TOKEN"       // bearer token
)

// MaxTokenBytes is the longest bearer token the server considers; longer
// ones are refused here rather than sent.
const MaxTokenBytes = 4096

// ConnectOption configures [Connect]: TLS, mTLS, a bearer token, or any
// other gRPC dial option.
type ConnectOption func(*connectConfig)

type connectConfig struct {
	tls        bool
	caFile     string
	certFile   string
	keyFile    string
	serverName string
	token      *string
	dial       []grpc.DialOption
	retry      *RetryPolicy
}

// WithTLS turns TLS on. The server's certificate is verified against the
// PEM CA bundle in caFile, or against the system's roots when caFile is "".
func WithTLS(caFile string) ConnectOption {
	return func(c *connectConfig) {
		c.tls = true
		c.caFile = caFile
	}
}

// WithClientCert presents the PEM client certificate (chain) in certFile and
// its private key in keyFile to the server (mTLS). It turns TLS on; without
// [WithTLS] the server is verified against the system's roots.
func WithClientCert(certFile, keyFile string) ConnectOption {
	return func(c *connectConfig) {
		c.tls = true
		c.certFile = certFile
		c.keyFile = keyFile
	}
}

// WithServerName checks the server's certificate against name instead of
// the target's host.
func WithServerName(name string) ConnectOption {
	return func(c *connectConfig) { c.serverName = name }
}

// WithToken sends "authorization: Bearer <token>" on every call, unary and
// streaming, over TLS or plaintext. A token is printable ASCII without
// spaces, at most [MaxTokenBytes] long; Connect refuses any other.
func WithToken(token string) ConnectOption {
	return func(c *connectConfig) { c.token = &token }
}

// WithDialOptions passes gRPC dial options through, after the ones Connect
// derives (so a transport credential here replaces the TLS settings).
func WithDialOptions(opts ...grpc.DialOption) ConnectOption {
	return func(c *connectConfig) { c.dial = append(c.dial, opts...) }
}

// ConnectOptionsFromEnv returns the options the environment asks for:
// TOKENWIRE_TLS_CA (a CA bundle; setting it turns TLS on),
// TOKENWIRE_CLIENT_CERT and TOKENWIRE_CLIENT_KEY (a client certificate; they turn
// TLS on too, verified against the system's roots when no CA is set) and
// TOKENWIRE_TOKEN (a bearer token). Unset or empty variables add nothing;
// Connect reports a certificate without its key and the like.
func ConnectOptionsFromEnv() []ConnectOption {
	var opts []ConnectOption
	ca, cert, key := os.Getenv(EnvTLSCA), os.Getenv(EnvClientCert), os.Getenv(EnvClientKey)
	if ca != "" {
		opts = append(opts, WithTLS(ca))
	}
	if cert != "" || key != "" {
		opts = append(opts, WithClientCert(cert, key))
	}
	if token := os.Getenv(EnvToken); token != "" {
		opts = append(opts, WithToken(token))
	}
	return opts
}

// Connect returns a client for target ("host:port" or any gRPC target).
// Without options the connection is plaintext with no token, as with
// [Dial]. Files named by the options are read here; a missing or bad file,
// a client certificate without its key, or a malformed token is an error.
// Like grpc.NewClient, it does not connect until the first call.
func Connect(target string, opts ...ConnectOption) (*Client, error) {
	var cfg connectConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	dial, err := cfg.dialOptions()
	if err != nil {
		return nil, err
	}
	c, err := Dial(target, dial...)
	if err == nil && cfg.retry != nil {
		c.SetRetryPolicy(*cfg.retry)
	}
	return c, err
}

func (c *connectConfig) dialOptions() ([]grpc.DialOption, error) {
	creds := insecure.NewCredentials()
	if c.tls {
		conf, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(conf)
	} else if c.serverName != "" {
		return nil, errors.New("tokenwire: a server name needs TLS (WithTLS)")
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if c.token != nil {
		if err := checkToken(*c.token); err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{header: "Bearer " + *c.token}))
	}
	return append(opts, c.dial...), nil
}

func (c *connectConfig) tlsConfig() (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.serverName}
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, fmt.Errorf("tokenwire: TLS CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tokenwire: TLS CA bundle %s holds no PEM certificate", c.caFile)
		}
		conf.RootCAs = pool // nil (the default) means the system's roots
	}
	if c.certFile != "" || c.keyFile != "" {
		if c.certFile == "" || c.keyFile == "" {
			return nil, errors.New("tokenwire: a client certificate needs both the certificate and the key file")
		}
		pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
		if err != nil {
			return nil, fmt.Errorf("tokenwire: TLS client certificate %s with key %s: %w", c.certFile, c.keyFile, err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

// checkToken accepts what an HTTP/2 header value and the server's token
// format both allow; the error never repeats the token.
func checkToken(token string) error {
	switch {
	case token == "":
		return errors.New("tokenwire: empty bearer token")
	case len(token) > MaxTokenBytes:
		return fmt.Errorf("tokenwire: bearer token longer than %d bytes", MaxTokenBytes)
	}
	for i := range len(token) {
		if b := token[i]; b <= ' ' || b > '~' {
			return fmt.Errorf("tokenwire: bearer token has a space, control or non-ASCII byte at offset %d", i)
		}
	}
	return nil
}

// bearer is per-RPC credentials that add the authorization header. It does
// not require transport security, so a token also works over plaintext
// (for a server on loopback or behind a TLS-terminating proxy).
type bearer struct{ header string }

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": b.header}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }
