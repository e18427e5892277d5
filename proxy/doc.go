// Package proxy is shardgate's client side: it accepts PostgreSQL clients,
// authenticates them, and relays their sessions to pooled server
// connections.
//
// A connection's life, from accept to close:
//
//  1. Server.Serve accepts and starts serveConn in a goroutine of its own.
//  2. Startup (startup.go): SSLRequest is answered with TLS when configured,
//     GSSENCRequest is declined, a 3.x protocol request is negotiated down
//     to 3.0, and a CancelRequest is carried out and the connection closed.
//  3. Authentication (package auth) against the configured user; unknown
//     users get the same exchange and the same 28P01 as a wrong password.
//  4. session.start checks out a server connection, applies the client's
//     startup settings to it, and sends the client the server's
//     ParameterStatus values, our own BackendKeyData and ReadyForQuery.
//     In session mode that server stays attached; otherwise it goes back
//     to the pool.
//  5. session.serve reads client messages (one type switch, one small
//     handler per message) until Terminate, EOF or a protocol violation.
//     Each request is queued (queue.go) and written to the server attached
//     by acquire, which checks one out when none is attached and first
//     replays the client's settings on it.
//  6. A pump goroutine per attached server (pump.go) relays responses to
//     the client, consuming the queue: it hides the proxy's own requests'
//     responses, inserts replies the proxy makes itself in their place, and
//     applies SET effects when transactions end. In transaction and
//     statement modes it returns the server to the pool as soon as the
//     server is idle, unless the client is pinned by session state.
//  7. session.finish, when the client leaves: a server still attached is
//     rolled back (and reset with DISCARD ALL in session mode or when
//     pinned) and returned, or, if a request was still running, cancelled
//     and closed.
//
// Goroutines: one per client (serveConn: reads the client, writes the
// server) and, while a server is attached, one pump (reads the server,
// writes the client). The pump ends when it releases its server, when
// stopPump wakes it with a read deadline, or when the server connection
// fails; it reports a failure to the client itself. Shared session state
// is guarded by session.mu; writes to the client by session.outMu, always
// taken after mu so that replies keep the order in which they were
// decided.
package proxy
