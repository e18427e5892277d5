package config

import (
	"log/slog"
	"slices"
	"time"
)

// Config is shardgate's whole configuration. The mapstructure tags give the
// keys used in the file, in environment variables and in flags; the yaml
// tags let a (redacted) Config be printed back in the same schema.
type Config struct {
	Listen  ListenConfig  `mapstructure:"listen" yaml:"listen"`
	Pool    PoolConfig    `mapstructure:"pool" yaml:"pool"`
	Backend BackendConfig `mapstructure:"backend" yaml:"backend"`
	Users   []User        `mapstructure:"users" yaml:"users"`
	Shards  []Shard       `mapstructure:"shards" yaml:"shards"`
	// Sharding places tables on shards.
	Sharding ShardingConfig `mapstructure:"sharding" yaml:"sharding"`
	// Catalog keeps the shard map in a database shared by many proxies.
	Catalog CatalogConfig `mapstructure:"catalog" yaml:"catalog"`
	Routing RoutingConfig `mapstructure:"routing" yaml:"routing"`
	Monitor MonitorConfig `mapstructure:"monitor" yaml:"monitor"`
	// Admin is the admin console; Metrics, the HTTP monitoring endpoint.
	Admin    AdminConfig    `mapstructure:"admin" yaml:"admin"`
	Metrics  MetricsConfig  `mapstructure:"metrics" yaml:"metrics"`
	Shutdown ShutdownConfig `mapstructure:"shutdown" yaml:"shutdown"`
	Log      LogConfig      `mapstructure:"log" yaml:"log"`
	Runtime  RuntimeConfig  `mapstructure:"runtime" yaml:"runtime"`
}

// RuntimeConfig tunes the Go runtime shardgate runs on.
type RuntimeConfig struct {
	// MaxProcs bounds the OS threads running Go code at once (GOMAXPROCS);
	// 0 uses every CPU. A proxy is I/O bound: on a host it shares with
	// PostgreSQL or its clients, 1 or 2 spends less CPU per transaction
	// on scheduling; a dedicated proxy host with many cores needs more to
	// serve more clients.
	MaxProcs int `mapstructure:"max_procs" yaml:"max_procs"`
}

// ListenConfig says where and how clients connect to shardgate.
type ListenConfig struct {
	// Addr is the host:port to listen on. An empty host listens on every
	// interface; port 0 picks a free port, which is only useful in tests.
	Addr string `mapstructure:"addr" yaml:"addr"`
	// ReusePort lets several shardgate processes listen on Addr at once
	// (SO_REUSEPORT), for rolling restarts; off, a second process fails
	// to start, which catches a mistake.
	ReusePort bool      `mapstructure:"reuse_port" yaml:"reuse_port"`
	TLS       TLSConfig `mapstructure:"tls" yaml:"tls"`
}

// TLSConfig is the TLS offered to clients.
type TLSConfig struct {
	Mode     ClientTLSMode `mapstructure:"mode" yaml:"mode"`
	CertFile string        `mapstructure:"cert_file" yaml:"cert_file"`
	KeyFile  string        `mapstructure:"key_file" yaml:"key_file"`
}

// ClientTLSMode is what shardgate does when a client asks for TLS (or not).
type ClientTLSMode string

// Client TLS modes.
const (
	// ClientTLSDisable refuses TLS; clients that insist fail to connect.
	ClientTLSDisable ClientTLSMode = "disable"
	// ClientTLSAllow accepts clients with or without TLS.
	ClientTLSAllow ClientTLSMode = "allow"
	// ClientTLSRequire refuses clients that do not use TLS.
	ClientTLSRequire ClientTLSMode = "require"
)

// PoolConfig sizes and times the pools of server connections. There is one
// pool per (host, user, database).
type PoolConfig struct {
	Mode PoolMode `mapstructure:"mode" yaml:"mode"`
	// Size is the most server connections one pool opens.
	Size int `mapstructure:"size" yaml:"size"`
	// MinIdle is how many idle connections each pool keeps open.
	MinIdle int `mapstructure:"min_idle" yaml:"min_idle"`
	// CheckoutTimeout bounds how long a client waits for a free connection.
	CheckoutTimeout time.Duration `mapstructure:"checkout_timeout" yaml:"checkout_timeout"`
	// IdleTimeout closes connections idle for longer; 0 never does.
	IdleTimeout time.Duration `mapstructure:"idle_timeout" yaml:"idle_timeout"`
	// MaxLifetime closes connections older than this; 0 never does.
	MaxLifetime time.Duration `mapstructure:"max_lifetime" yaml:"max_lifetime"`
	// PreparedCacheSize is how many prepared statements each server
	// connection keeps (least recently used are closed first).
	PreparedCacheSize int `mapstructure:"prepared_cache_size" yaml:"prepared_cache_size"`
	// MaxClientConn is how many clients may be connected at once.
	MaxClientConn int `mapstructure:"max_client_conn" yaml:"max_client_conn"`
}

// PoolMode is how long a client keeps the server connection it was given.
type PoolMode string

// Pool modes, as in PgBouncer.
const (
	// PoolTransaction returns the connection to the pool at the end of each
	// transaction.
	PoolTransaction PoolMode = "transaction"
	// PoolSession keeps the connection until the client disconnects.
	PoolSession PoolMode = "session"
	// PoolStatement returns the connection after each statement and so
	// forbids multi-statement transactions.
	PoolStatement PoolMode = "statement"
)

// BackendConfig says how shardgate connects to PostgreSQL servers.
type BackendConfig struct {
	ConnectTimeout time.Duration `mapstructure:"connect_timeout" yaml:"connect_timeout"`
	TLS            ServerTLSMode `mapstructure:"tls" yaml:"tls"`
	// CAFile verifies server certificates; empty uses the system roots.
	CAFile string `mapstructure:"ca_file" yaml:"ca_file"`
}

// ServerTLSMode is the TLS used towards servers, with libpq's sslmode
// meanings.
type ServerTLSMode string

// Server TLS modes.
const (
	ServerTLSDisable    ServerTLSMode = "disable"
	ServerTLSPrefer     ServerTLSMode = "prefer"
	ServerTLSRequire    ServerTLSMode = "require"
	ServerTLSVerifyFull ServerTLSMode = "verify-full"
)

// User is a role clients log in as. Clients authenticate against shardgate
// with Auth and the secrets here; shardgate then logs in to the servers as
// ServerUser with ServerPassword.
type User struct {
	Name string     `mapstructure:"name" yaml:"name"`
	Auth AuthMethod `mapstructure:"auth" yaml:"auth"`
	// Password is the plaintext password. It can answer every Auth method.
	Password string `mapstructure:"password" yaml:"password"`
	// ScramVerifier is a SCRAM-SHA-256 verifier in pg_authid's format.
	ScramVerifier string `mapstructure:"scram_verifier" yaml:"scram_verifier"`
	// MD5Hash is "md5" followed by the hex md5 of password+name, as in
	// pg_authid.
	MD5Hash string `mapstructure:"md5_hash" yaml:"md5_hash"`
	// ServerUser is the role used on the servers. Load defaults it to Name.
	ServerUser string `mapstructure:"server_user" yaml:"server_user"`
	// ServerPassword is the password used on the servers. Load defaults it
	// to Password; it stays empty when only a verifier or hash is known,
	// which works when the servers trust shardgate.
	ServerPassword string `mapstructure:"server_password" yaml:"server_password"`
}

// AuthMethod is how a client proves who it is, named as in pg_hba.conf.
type AuthMethod string

// Authentication methods.
const (
	AuthSCRAM    AuthMethod = "scram-sha-256"
	AuthMD5      AuthMethod = "md5"
	AuthPassword AuthMethod = "password"
	AuthTrust    AuthMethod = "trust"
)

// Shard is one slice of the data, served by a primary and its replicas.
type Shard struct {
	Name  string `mapstructure:"name" yaml:"name"`
	Hosts []Host `mapstructure:"hosts" yaml:"hosts"`
}

// Host is one PostgreSQL server of a shard.
type Host struct {
	Addr string `mapstructure:"addr" yaml:"addr"`
	Role Role   `mapstructure:"role" yaml:"role"`
	// Zone is a free-form locality label, such as an availability zone.
	Zone string `mapstructure:"zone" yaml:"zone"`
}

// Role is whether a host takes writes.
type Role string

// Host roles.
const (
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
	// RoleAuto asks shardgate to find out with pg_is_in_recovery(), which
	// keeps working across failovers.
	RoleAuto Role = "auto"
)

// LogConfig configures shardgate's own log.
type LogConfig struct {
	Level  LogLevel  `mapstructure:"level" yaml:"level"`
	Format LogFormat `mapstructure:"format" yaml:"format"`
	// SlowQuery logs the statements that take longer; 0 logs none.
	SlowQuery time.Duration `mapstructure:"slow_query" yaml:"slow_query"`
	// Parameters lets the slow query log and error logs show bind
	// parameters and the literals in query text. Off, they show only the
	// statement's shape, since values may be personal data or secrets.
	Parameters bool `mapstructure:"parameters" yaml:"parameters"`
}

// LogLevel is the least severe level logged.
type LogLevel string

// Log levels.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// Slog returns the slog level for l; unknown levels map to info, which
// Validate prevents.
func (l LogLevel) Slog() slog.Level {
	switch l {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// LogFormat is how log records are written.
type LogFormat string

// Log formats.
const (
	// LogFormatAuto writes text to a terminal and JSON otherwise.
	LogFormatAuto LogFormat = "auto"
	LogFormatText LogFormat = "text"
	LogFormatJSON LogFormat = "json"
)

// redactedSecret replaces secrets in [Config.Redacted]. Empty secrets stay
// empty so that the output still tells which ones are set.
const redactedSecret = "******"

// Default returns the built-in defaults. It has no users or shards, so it
// does not validate on its own.
func Default() *Config {
	return &Config{
		Listen: ListenConfig{
			Addr: "127.0.0.1:6432",
			TLS:  TLSConfig{Mode: ClientTLSDisable},
		},
		Pool: PoolConfig{
			Mode:              PoolTransaction,
			Size:              20,
			MinIdle:           0,
			CheckoutTimeout:   5 * time.Second,
			IdleTimeout:       10 * time.Minute,
			MaxLifetime:       time.Hour,
			PreparedCacheSize: 512,
			MaxClientConn:     10000,
		},
		Backend: BackendConfig{
			ConnectTimeout: 5 * time.Second,
			TLS:            ServerTLSDisable,
		},
		Catalog: CatalogConfig{
			PollInterval:   time.Second,
			DirectoryCache: 100_000,
		},
		Routing: RoutingConfig{
			ReplicaReads:   ReplicaReadsOn,
			ReplicaChoice:  ChoiceRoundRobin,
			ReadYourWrites: RYWLSN,
			RYWWait:        50 * time.Millisecond,
			RYWWindow:      5 * time.Second,
			ParseCacheSize: 10000,
		},
		Monitor: MonitorConfig{
			Interval:           100 * time.Millisecond,
			Timeout:            time.Second,
			BanMin:             250 * time.Millisecond,
			BanMax:             10 * time.Second,
			MaxReplicaLag:      10 * time.Second,
			MaxReplicaLagBytes: 64 * Megabyte,
			Database:           "postgres",
		},
		Admin:    AdminConfig{Database: "shardgate"},
		Shutdown: ShutdownConfig{DrainTimeout: 30 * time.Second},
		Log:      LogConfig{Level: LogInfo, Format: LogFormatAuto},
	}
}

// User returns the user called name, or nil. The result points into
// c.Users.
func (c *Config) User(name string) *User {
	for i := range c.Users {
		if c.Users[i].Name == name {
			return &c.Users[i]
		}
	}
	return nil
}

// Redacted returns a deep copy of c with every password, verifier and hash
// replaced by "******", for check-config and logs. The catalog's DSN
// keeps everything but its password.
func (c *Config) Redacted() *Config {
	r := *c
	r.Routing.WriteFunctions = slices.Clone(c.Routing.WriteFunctions)
	r.Admin.Users = slices.Clone(c.Admin.Users)
	r.Admin.StatsUsers = slices.Clone(c.Admin.StatsUsers)
	r.Monitor.Password = redact(c.Monitor.Password)
	r.Catalog.DSN = redactDSN(c.Catalog.DSN)
	if c.Users != nil {
		r.Users = make([]User, len(c.Users))
		for i, u := range c.Users {
			u.Password = redact(u.Password)
			u.ScramVerifier = redact(u.ScramVerifier)
			u.MD5Hash = redact(u.MD5Hash)
			u.ServerPassword = redact(u.ServerPassword)
			r.Users[i] = u
		}
	}
	if c.Shards != nil {
		r.Shards = make([]Shard, len(c.Shards))
		for i, s := range c.Shards {
			s.Hosts = slices.Clone(s.Hosts)
			r.Shards[i] = s
		}
	}
	return &r
}

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return redactedSecret
}

// applyItemDefaults fills the per-item defaults of the lists, which viper's
// defaults cannot reach because they apply to keys, not list elements.
func (c *Config) applyItemDefaults() {
	for i := range c.Users {
		u := &c.Users[i]
		if u.Auth == "" {
			u.Auth = AuthSCRAM
		}
		u.ServerUser, u.ServerPassword = u.serverCredentials()
	}
	for i := range c.Shards {
		for j := range c.Shards[i].Hosts {
			if h := &c.Shards[i].Hosts[j]; h.Role == "" {
				h.Role = RoleAuto
			}
		}
	}
}

// serverCredentials returns the role and password u logs in to the
// servers with, defaulted from Name and Password. Load stores the result,
// but a Config built in code may not have, and it must get the same
// answer.
func (u *User) serverCredentials() (user, password string) {
	user, password = u.ServerUser, u.ServerPassword
	if user == "" {
		user = u.Name
	}
	if password == "" {
		password = u.Password
	}
	return user, password
}
