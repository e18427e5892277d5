// Package auth authenticates clients on the proxy's front end the way a
// PostgreSQL server would: trust, cleartext password, md5 and
// SCRAM-SHA-256, with failures reported in Postgres' own words so clients
// and drivers react exactly as they would against a real server.
//
// The package never touches the socket. The session hands it a [Conn] that
// sends backend messages and returns the bodies of the client's
// password-type messages; once [Authenticate] returns nil the session sends
// AuthenticationOk and carries on with the startup sequence.
//
// Unknown users are handled with [AuthenticateUnknown], which runs a
// convincing exchange that always fails, so that probing clients cannot learn
// which role names exist.
package auth
