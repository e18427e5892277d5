package config

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// AdminConfig configures the admin console: a virtual database, served by
// shardgate itself, that takes SHOW commands and control commands such as
// RELOAD, PAUSE and SHUTDOWN, as PgBouncer's does.
type AdminConfig struct {
	// Users may run every admin command. Each must be one of
	// [Config.Users], and logs in with that user's secrets. Empty: nobody.
	Users []string `mapstructure:"users" yaml:"users"`
	// StatsUsers may only run SHOW commands. Same rules as Users.
	StatsUsers []string `mapstructure:"stats_users" yaml:"stats_users"`
	// Database is the name clients connect to to reach the console.
	Database string `mapstructure:"database" yaml:"database"`
}

// MetricsConfig configures the HTTP listener for monitoring.
type MetricsConfig struct {
	// Listen is the host:port serving /metrics (Prometheus), /healthz and
	// /readyz; empty serves nothing.
	Listen string `mapstructure:"listen" yaml:"listen"`
}

// ShutdownConfig says how shardgate stops.
type ShutdownConfig struct {
	// DrainTimeout bounds how long SIGTERM or the SHUTDOWN command waits
	// for running transactions to end before closing their connections;
	// 0 closes them at once.
	DrainTimeout time.Duration `mapstructure:"drain_timeout" yaml:"drain_timeout"`
}

func (c *Config) validateAdmin(v *validator) {
	a := c.Admin
	// With no users, validateUsers has said so; every name would be
	// unknown, one more message each for the same mistake.
	if len(c.Users) > 0 {
		for _, l := range []struct {
			key   string
			names []string
		}{{"admin.users", a.Users}, {"admin.stats_users", a.StatsUsers}} {
			for i, name := range l.names {
				if c.User(name) == nil {
					v.add(fmt.Sprintf("%s[%d]", l.key, i), "expected the name of one of users, got %q", name)
				}
			}
		}
	}
	if a.Database == "" {
		v.add("admin.database", "required (default shardgate)")
	}
}

func (c *Config) validateMetrics(v *validator) {
	addr := c.Metrics.Listen
	if addr == "" {
		return
	}
	before := len(v.errs)
	v.hostPort("metrics.listen", addr, false, 0)
	if len(v.errs) > before {
		return
	}
	// Caught here, it names both keys; at start, it would be a bare
	// "address already in use". Port 0 picks a free port each time.
	_, port, _ := net.SplitHostPort(addr)
	if n, _ := strconv.Atoi(port); n != 0 && addr == c.Listen.Addr {
		v.add("metrics.listen", "expected an address other than listen.addr, got %q", addr)
	}
}
