package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/shardgate/shardgate/proxy"
	"github.com/shardgate/shardgate/proxy/tlsconf"
	"github.com/shardgate/shardgate/test/cluster"
)

// TestBackendTLS: shardgate reaches servers over TLS, without checking
// the certificate (backend.tls: require) and checking it against a CA
// and the host name (verify-full); a certificate that does not verify
// fails the connection instead of being used.
func TestBackendTLS(t *testing.T) {
	c := cluster.ForTest(t, cluster.Options{
		Users:     []cluster.User{{Name: "app", Password: "app"}},
		Databases: []cluster.Database{{Name: "app", Owner: "app"}},
	})
	h := c.Shards[0].Primary
	ctx := context.Background()
	cert, key := filepath.Join(h.DataDir, "server.crt"), filepath.Join(h.DataDir, "server.key")
	if err := tlsconf.WriteSelfSigned(cert, key, []string{"127.0.0.1", "localhost"}); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// The server runs as the postgres user and insists on owning its key.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, f := range []string{cert, key} {
			if err := os.Chown(f, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, q := range []string{"alter system set ssl = on", "select pg_reload_conf()"} {
		if err := h.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)

	for _, tc := range []struct {
		name string
		tls  *tls.Config
		ok   bool
	}{
		{"require", &tls.Config{InsecureSkipVerify: true}, true},
		{"verify-full", &tls.Config{RootCAs: roots}, true},
		{"verify-full with the wrong CA", &tls.Config{RootCAs: x509.NewCertPool()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, proxy.TransactionMode, func(cfg *proxyConfig) {
				cfg.opts.Shards = []proxy.Shard{{Name: "s0", Primary: h.Addr()}}
				cfg.pool.TLS = tc.tls
			})
			conn, err := connectDSNErr(p.dsn("app", "app"))
			if !tc.ok {
				if err == nil {
					conn.Close(ctx)
					t.Fatal("connected although the server certificate does not verify")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var ssl bool
			if err := conn.QueryRow(ctx, "select ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
				t.Fatalf("server connection not encrypted (%v, %v)", ssl, err)
			}
		})
	}
}
