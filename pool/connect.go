package pool

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"

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
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		return nil, nil, err
	}
	return hc.Conn, &Hello{PID: hc.PID, SecretKey: hc.SecretKey, Params: hc.ParameterStatuses}, nil
}
