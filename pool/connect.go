package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ConnConfig returns the pgconn configuration shardgate connects to the
// server at addr ("host:port") with. Every field is set explicitly, so
// nothing comes from the process environment (PGHOST, PGPASSWORD, service
// files). A TLS configuration without ServerName is cloned to verify the
// server against the host part of addr, since one configuration serves
// every host; fallback adds a plain-text attempt when the server refuses
// TLS (libpq's sslmode=prefer). The caller may still adjust the result,
// e.g. RuntimeParams["application_name"].
func ConnConfig(addr, user, password, database string, tlsConf *tls.Config, fallback bool) (*pgconn.Config, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port in %q", addr)
	}
	// Start from a parsed minimal DSN because pgconn insists on configs
	// made by ParseConfig, then overwrite whatever it took from the
	// environment.
	cfg, err := pgconn.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port = host, uint16(port)
	cfg.User, cfg.Password, cfg.Database = user, password, database
	cfg.RuntimeParams = map[string]string{}
	cfg.TLSConfig, cfg.Fallbacks = tlsConf, nil
	if tlsConf != nil && !tlsConf.InsecureSkipVerify && tlsConf.ServerName == "" {
		cfg.TLSConfig = tlsConf.Clone()
		cfg.TLSConfig.ServerName = host
	}
	if tlsConf != nil && fallback {
		cfg.Fallbacks = []*pgconn.FallbackConfig{{Host: host, Port: uint16(port)}}
	}
	cfg.KerberosSrvName, cfg.KerberosSpn = "", ""
	cfg.ConnectTimeout = 0 // bounded by the caller's context
	return cfg, nil
}

func dialPgconn(ctx context.Context, k Key, o *Options) (net.Conn, *Hello, error) {
	cfg, err := ConnConfig(k.Addr, k.User, o.Password, k.Database, o.TLS, o.TLSFallback)
	if err != nil {
		return nil, nil, err
	}
	if k.ReadWrite {
		cfg.ValidateConnect = pgconn.ValidateConnectTargetSessionAttrsReadWrite
	}
	return dialConfig(ctx, cfg)
}

// dialConfig connects with pgconn and takes the socket over from it.
func dialConfig(ctx context.Context, cfg *pgconn.Config) (net.Conn, *Hello, error) {
	cfg = cfg.Copy()
	var tc *takeover
	prev := cfg.AfterNetConnect
	cfg.AfterNetConnect = func(ctx context.Context, c *pgconn.Config, nc net.Conn) (net.Conn, error) {
		if prev != nil {
			var err error
			if nc, err = prev(ctx, c, nc); err != nil {
				return nil, err
			}
		}
		tc = &takeover{Conn: nc}
		return tc, nil
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		return nil, nil, err
	}
	if hc.Conn != net.Conn(tc) {
		hc.Conn.Close()
		return nil, nil, errors.New("shardgate: pgconn handed back a connection it was not given")
	}
	nc, err := tc.release()
	if err != nil {
		tc.Conn.Close()
		return nil, nil, err
	}
	return nc, &Hello{PID: hc.PID, SecretKey: hc.SecretKey, Params: hc.ParameterStatuses}, nil
}

// errTakenOver is what pgconn's reads get once the connection is ours.
var errTakenOver = errors.New("shardgate: connection taken over from pgconn")

// takeover is the connection pgconn does its handshake over. pgconn starts
// a background reader when one of its writes takes over 15 ms, which a
// loaded machine easily makes, and that reader stops only after its next
// read returns. Left blocked on the socket after the handshake, it would
// swallow the server's reply to our first request, and the client would
// wait forever. (pgconn's SyncConn pings until the reader is gone, which
// another slow write can defeat again and again.) So once pgconn is done,
// release refuses every further read through this wrapper and wakes the
// one still blocked, before the connection underneath is used directly.
type takeover struct {
	net.Conn
	// reading counts reads in progress; released refuses new ones; lost
	// records a read that returned data after the release began.
	reading  atomic.Int32
	released atomic.Bool
	lost     atomic.Bool
}

func (c *takeover) Read(p []byte) (int, error) {
	c.reading.Add(1)
	defer c.reading.Add(-1)
	// The order (count, then check) pairs with release's (set, then
	// count): a read either sees the release or is seen by it.
	if c.released.Load() {
		return 0, errTakenOver
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.released.Load() {
		c.lost.Store(true)
	}
	return n, err
}

// takeoverWait bounds how long release waits for a woken read to return.
const takeoverWait = 5 * time.Second

// release ends pgconn's use of the connection and returns the one
// underneath. A read still blocked is woken by a read deadline in the
// past, which consumes nothing; the deadline is cleared once it returned.
func (c *takeover) release() (net.Conn, error) {
	c.released.Store(true)
	if c.reading.Load() == 0 {
		return c.Conn, nil
	}
	c.Conn.SetReadDeadline(time.Unix(1, 0))
	deadline := time.Now().Add(takeoverWait)
	for c.reading.Load() > 0 {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("shardgate: pgconn's reader did not let go of the new server connection within %s", takeoverWait)
		}
		time.Sleep(100 * time.Microsecond)
	}
	if err := c.Conn.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	if c.lost.Load() {
		// Nothing is due from the server before our first request; if
		// something came anyway, its bytes are gone with pgconn.
		return nil, errors.New("shardgate: the server sent data on a new connection before any request")
	}
	return c.Conn, nil
}
