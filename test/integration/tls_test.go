package integration

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/proxy/tlsconf"
)

// TestTLS: clients may connect with TLS; with TLS required, those that do
// not are refused with 28000.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := tlsconf.WriteSelfSigned(cert, key, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	tc, err := tlsconf.ServerConfig(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, require := range []bool{false, true} {
		p := startProxy(t, proxy.TransactionMode, func(c *proxyConfig) {
			c.opts.TLS, c.opts.RequireTLS = tc, require
		})
		ctx := ctxT(t)
		verified := p.dsn("app", "app") + " sslmode=verify-full sslrootcert=" + cert
		verified = strings.Replace(verified, "sslmode=disable ", "", 1)
		c := connectDSN(t, verified)
		var ssl bool
		if err := c.QueryRow(ctx, "select 1 = 1").Scan(&ssl); err != nil {
			t.Fatal(err)
		}
		if _, isTLS := c.PgConn().Conn().(*tls.Conn); !isTLS {
			t.Fatal("connection is not encrypted")
		}
		_, err := pgconn.Connect(ctx, p.dsn("app", "app"))
		switch {
		case require && sqlState(err) != "28000":
			t.Fatalf("plain connection with TLS required: %v", err)
		case !require && err != nil:
			t.Fatalf("plain connection with TLS allowed: %v", err)
		}
	}
}
