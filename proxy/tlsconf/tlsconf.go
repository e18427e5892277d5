package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ALPNProtocol is the ALPN protocol name PostgreSQL clients offer (libpq
// always, since version 17). Go's server aborts a handshake whose client
// offers ALPN protocols none of which it knows, so it must be listed.
const ALPNProtocol = "postgresql"

// ServerConfig builds a *tls.Config from PEM cert/key files (TLS 1.2 minimum).
// The certificate file may hold intermediate certificates after the leaf.
func ServerConfig(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading TLS key pair %s, %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{ALPNProtocol},
	}, nil
}

// certValidity is how long WriteSelfSigned's certificates last.
const certValidity = 365 * 24 * time.Hour

// WriteSelfSigned creates a self-signed ECDSA P-256 cert+key for hosts (e.g. "localhost","127.0.0.1"), valid 1 year, writing PEM files with 0600 for the key.
// Hosts that parse as IP addresses go into the IP SANs, the rest into the
// DNS SANs; the first host is also the subject's common name. The
// certificate is a leaf, not a CA: clients trust it by adding the
// certificate file itself as a root (libpq's sslrootcert).
func WriteSelfSigned(certFile, keyFile string, hosts []string) error {
	if len(hosts) == 0 {
		return errors.New("self-signed certificate needs at least one host")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return fmt.Errorf("generating serial number: %w", err)
	}
	// Backdating absorbs small clock differences between this host and
	// clients that check the certificate straight away.
	now := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"shardgate"}},
		NotBefore:             now,
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("creating certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding key: %w", err)
	}

	// The key goes first so that a failure never leaves a new certificate
	// next to a key that does not match it.
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFile replaces name atomically. Writing through a fresh temporary
// file also guarantees the mode: os.WriteFile would keep the permissions
// of an existing, possibly world-readable, key file.
func writeFile(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
