package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writePair(t *testing.T, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := WriteSelfSigned(certFile, keyFile, hosts); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// handshake runs both ends of a TLS handshake over loopback TCP and returns
// the client's view of the connection and the first error from either
// side. TCP rather than net.Pipe: a side that fails writes an alert while
// the other may still be writing its flight, which deadlocks an unbuffered
// pipe.
func handshake(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		c.SetDeadline(deadline)
		errc <- tls.Server(c, server).Handshake()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	cli := tls.Client(c, client)
	cerr := cli.Handshake()
	if cerr != nil {
		c.Close() // the server may be waiting for a reply that will not come
	}
	serr := <-errc
	if cerr != nil {
		return tls.ConnectionState{}, cerr
	}
	return cli.ConnectionState(), serr
}

func TestSelfSignedHandshake(t *testing.T) {
	certFile, keyFile := writePair(t, "localhost", "127.0.0.1", "::1")

	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %o, want 600", perm)
	}

	server, err := ServerConfig(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if server.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x", server.MinVersion)
	}
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("certificate file holds no PEM certificate")
	}

	tests := []struct {
		name    string
		client  *tls.Config
		wantErr bool
	}{
		{name: "dns name", client: &tls.Config{RootCAs: roots, ServerName: "localhost"}},
		{name: "ipv4", client: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}},
		{name: "ipv6", client: &tls.Config{RootCAs: roots, ServerName: "::1"}},
		{name: "alpn", client: &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{ALPNProtocol}}},
		{name: "other host", client: &tls.Config{RootCAs: roots, ServerName: "example.com"}, wantErr: true},
		{name: "untrusted", client: &tls.Config{ServerName: "localhost"}, wantErr: true},
		{name: "tls 1.1", client: &tls.Config{RootCAs: roots, ServerName: "localhost", MaxVersion: tls.VersionTLS11}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, err := handshake(t, server, tt.client)
			if tt.wantErr {
				if err == nil {
					t.Fatal("handshake succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if state.Version < tls.VersionTLS12 {
				t.Errorf("negotiated version %x", state.Version)
			}
			if len(tt.client.NextProtos) > 0 && state.NegotiatedProtocol != ALPNProtocol {
				t.Errorf("ALPN %q", state.NegotiatedProtocol)
			}
		})
	}
}

func TestWriteSelfSignedTightensExistingKeyMode(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSelfSigned(filepath.Join(dir, "cert.pem"), keyFile, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %o, want 600", perm)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("left temporary files behind: %v", entries)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	if err := WriteSelfSigned(filepath.Join(dir, "c"), filepath.Join(dir, "k"), nil); err == nil {
		t.Error("no hosts accepted")
	}
	if err := WriteSelfSigned(filepath.Join(dir, "c"), filepath.Join(dir, "missing", "k"), []string{"localhost"}); err == nil {
		t.Error("unwritable key path accepted")
	}
	if _, err := ServerConfig(filepath.Join(dir, "nope.crt"), filepath.Join(dir, "nope.key")); err == nil {
		t.Error("missing files accepted")
	}
	certA, _ := writePair(t, "localhost")
	_, keyB := writePair(t, "localhost")
	if _, err := ServerConfig(certA, keyB); err == nil {
		t.Error("mismatched key accepted")
	}
}
