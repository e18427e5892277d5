// Package tlsconf builds the TLS configuration of the proxy's front end and
// can mint a self-signed certificate for development and tests.
//
// The configuration mirrors what PostgreSQL 17 accepts: TLS 1.2 or newer
// and the "postgresql" ALPN protocol, so that clients using either the
// classic SSLRequest negotiation or direct TLS connect to the proxy as they
// would to a server.
package tlsconf
