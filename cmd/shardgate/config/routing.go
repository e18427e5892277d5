package config

import (
	"reflect"
	"time"
)

// RoutingConfig says which of a shard's hosts serves each statement.
type RoutingConfig struct {
	ReplicaReads  ReplicaReads  `mapstructure:"replica_reads" yaml:"replica_reads"`
	ReplicaChoice ReplicaChoice `mapstructure:"replica_choice" yaml:"replica_choice"`
	// Zone is this shardgate's locality, compared with [Host.Zone] to
	// prefer nearby replicas; empty prefers none.
	Zone           string         `mapstructure:"zone" yaml:"zone"`
	ReadYourWrites ReadYourWrites `mapstructure:"read_your_writes" yaml:"read_your_writes"`
	// RYWWait bounds how long a read waits, in [RYWLSN] mode, for a
	// replica to replay the client's last commit before it goes to the
	// primary instead; 0 does not wait.
	RYWWait time.Duration `mapstructure:"ryw_wait" yaml:"ryw_wait"`
	// RYWWindow is how long, in [RYWTime] mode, a client's reads go to the
	// primary after its last write.
	RYWWindow time.Duration `mapstructure:"ryw_window" yaml:"ryw_window"`
	// ParseCacheSize is how many parsed statements are remembered, keyed
	// by their text, so that routing does not parse them again.
	ParseCacheSize int `mapstructure:"parse_cache_size" yaml:"parse_cache_size"`
	// WriteFunctions names, unqualified and in lower case, functions
	// that modify data, so that a SELECT calling one goes to the primary.
	// They add to the ones shardgate knows.
	WriteFunctions []string `mapstructure:"write_functions" yaml:"write_functions"`
}

// ReplicaReads is whether statements that cannot change data go to
// replicas.
type ReplicaReads string

// Replica read modes.
const (
	// ReplicaReadsOn sends reads to the shard's usable replicas, and to
	// the primary when there are none.
	ReplicaReadsOn ReplicaReads = "on"
	// ReplicaReadsOff sends everything to the primary.
	ReplicaReadsOff ReplicaReads = "off"
	// ReplicaReadsIncludePrimary counts the primary as one more replica
	// for reads.
	ReplicaReadsIncludePrimary ReplicaReads = "include_primary"
)

// ReplicaChoice is how a read picks one of the usable replicas.
type ReplicaChoice string

// Replica choices.
const (
	ChoiceRoundRobin       ReplicaChoice = "round_robin"
	ChoiceLeastConnections ReplicaChoice = "least_connections"
	ChoiceRandom           ReplicaChoice = "random"
)

// ReadYourWrites is how a client is guaranteed to read its own committed
// writes despite replication lag.
type ReadYourWrites string

// Read-your-writes modes.
const (
	// RYWLSN sends a client's reads to replicas that have replayed the
	// WAL position of its last commit, and to the primary when none has.
	RYWLSN ReadYourWrites = "lsn"
	// RYWTime sends a client's reads to the primary for
	// [RoutingConfig.RYWWindow] after each of its writes.
	RYWTime ReadYourWrites = "time"
	// RYWOff gives no guarantee: a read right after a write may not see
	// it.
	RYWOff ReadYourWrites = "off"
)

// MonitorConfig configures the checks that find each host's role, health
// and replication lag.
type MonitorConfig struct {
	// Interval is how often each host is checked.
	Interval time.Duration `mapstructure:"interval" yaml:"interval"`
	// Timeout bounds one check, connecting or querying.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
	// BanMin is how long a host that fails a check takes no traffic. It
	// doubles with each consecutive failure, up to BanMax, so that a host
	// that keeps failing is not retried at full rate.
	BanMin time.Duration `mapstructure:"ban_min" yaml:"ban_min"`
	BanMax time.Duration `mapstructure:"ban_max" yaml:"ban_max"`
	// MaxReplicaLag keeps replicas further behind than this from taking
	// reads until they catch up; 0 sets no limit.
	MaxReplicaLag time.Duration `mapstructure:"max_replica_lag" yaml:"max_replica_lag"`
	// MaxReplicaLagBytes is the same limit in bytes of WAL; 0 sets none.
	MaxReplicaLagBytes ByteSize `mapstructure:"max_replica_lag_bytes" yaml:"max_replica_lag_bytes"`
	// User and Password are the role the checks log in as. Use
	// [Config.MonitorCredentials], which applies the default.
	User     string `mapstructure:"user" yaml:"user"`
	Password string `mapstructure:"password" yaml:"password"`
	// Database is the database the checks connect to.
	Database string `mapstructure:"database" yaml:"database"`
}

// MonitorCredentials returns the role and password the monitor logs in
// with: monitor.user and monitor.password when a user is set, else the
// server credentials of the first user, which exist in every valid
// configuration. The monitor's queries need no privilege, so any role
// that may connect will do.
func (c *Config) MonitorCredentials() (user, password string) {
	if c.Monitor.User != "" {
		return c.Monitor.User, c.Monitor.Password
	}
	if len(c.Users) == 0 {
		return "", ""
	}
	return c.Users[0].serverCredentials()
}

// toReplicaReads accepts booleans, and their text from the environment or
// a flag, for on and off: YAML 1.1 parsers read unquoted on and off as
// true and false, and users write either.
func toReplicaReads(from reflect.Type, data any) (any, error) {
	v := reflect.ValueOf(data)
	switch from.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return string(ReplicaReadsOn), nil
		}
		return string(ReplicaReadsOff), nil
	case reflect.String:
		switch s := v.String(); s {
		case "true":
			return string(ReplicaReadsOn), nil
		case "false":
			return string(ReplicaReadsOff), nil
		default:
			return s, nil
		}
	}
	return nil, &typeError{want: "on, off or include_primary", got: data}
}
