package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors is every problem found in a configuration. Error lists them one
// per line, so that they can all be fixed in one edit rather than one per
// restart. Use errors.As to reach the individual *FieldError and
// *UnknownKeyError values.
type Errors []error

// Error lists the problems, one per line.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, err := range e {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems.
func (e Errors) Unwrap() []error { return e }

// FieldError is a problem with the value of one key.
type FieldError struct {
	// Key is the full path of the key, such as "shards[1].hosts[0].addr".
	Key string
	// Msg says what was expected and, unless it is secret, what was found.
	Msg string
}

// Error returns "key: message".
func (e *FieldError) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}

// UnknownKeyError is a key in the file that shardgate does not know, most
// often a typo that would otherwise be silently ignored.
type UnknownKeyError struct {
	// Key is the full path of the key, such as "pool.sise".
	Key string
	// Suggestion is the closest known key, or "".
	Suggestion string
}

// Error names the key and the suggestion, if any.
func (e *UnknownKeyError) Error() string {
	if e.Suggestion == "" {
		return fmt.Sprintf("unknown key %q", e.Key)
	}
	return fmt.Sprintf("unknown key %q (did you mean %q?)", e.Key, e.Suggestion)
}

// Validate checks the whole configuration and returns [Errors] listing
// every problem, or nil. It checks that TLS and CA files exist, but does
// not connect anywhere.
func (c *Config) Validate() error {
	var v validator
	c.validateListen(&v)
	c.validatePool(&v)
	c.validateBackend(&v)
	c.validateUsers(&v)
	c.validateShards(&v)
	c.validateSharding(&v)
	c.validateCatalog(&v)
	c.validateRouting(&v)
	c.validateMonitor(&v)
	c.validateAdmin(&v)
	c.validateMetrics(&v)
	v.nonNegative("shutdown.drain_timeout", c.Shutdown.DrainTimeout, "30s", "no wait")
	oneOf(&v, "log.level", c.Log.Level, LogDebug, LogInfo, LogWarn, LogError)
	oneOf(&v, "log.format", c.Log.Format, LogFormatAuto, LogFormatText, LogFormatJSON)
	v.nonNegative("log.slow_query", c.Log.SlowQuery, "1s", "off")
	v.atLeast("runtime.max_procs", c.Runtime.MaxProcs, 0)
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

// validator collects problems so that Validate reports all of them.
type validator struct {
	errs Errors
}

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func oneOf[T ~string](v *validator, key string, got T, allowed ...T) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	v.add(key, "expected one of %s, got %q", strings.Join(names, ", "), got)
}

// hostPort checks a host:port address. minPort is 0 where a free port may
// be picked (listening) and 1 where one must be dialled.
func (v *validator) hostPort(key, addr string, needHost bool, minPort int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || (needHost && host == "") {
		v.add(key, "expected host:port, got %q", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < minPort || n > 65535 {
		v.add(key, "expected host:port with a port from %d to 65535, got %q", minPort, addr)
	}
}

func (v *validator) positive(key string, d time.Duration, example string) {
	if d <= 0 {
		v.add(key, "expected a duration > 0 such as %s, got %q", example, d)
	}
}

// nonNegative checks a duration >= 0; zero says what 0 means, such as
// "never".
func (v *validator) nonNegative(key string, d time.Duration, example, zero string) {
	if d < 0 {
		v.add(key, "expected a duration >= 0 such as %s (0 means %s), got %q", example, zero, d)
	}
}

func (v *validator) atLeast(key string, n, low int) {
	if n < low {
		v.add(key, "expected an integer >= %d, got %d", low, n)
	}
}

// readable reports files that cannot be opened now rather than at the
// first TLS handshake, where the failure would be far from its cause.
func (v *validator) readable(key, path string) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		v.add(key, "cannot read %q: %v", path, err)
		return
	}
	f.Close()
}

func (c *Config) validateListen(v *validator) {
	v.hostPort("listen.addr", c.Listen.Addr, false, 0)
	t := c.Listen.TLS
	oneOf(v, "listen.tls.mode", t.Mode, ClientTLSDisable, ClientTLSAllow, ClientTLSRequire)
	if t.Mode == ClientTLSDisable || t.Mode == "" {
		return
	}
	for _, f := range []struct{ key, path string }{
		{"listen.tls.cert_file", t.CertFile},
		{"listen.tls.key_file", t.KeyFile},
	} {
		if f.path == "" {
			v.add(f.key, "required when listen.tls.mode is %s", t.Mode)
		} else {
			v.readable(f.key, f.path)
		}
	}
}

func (c *Config) validatePool(v *validator) {
	p := c.Pool
	oneOf(v, "pool.mode", p.Mode, PoolTransaction, PoolSession, PoolStatement)
	v.atLeast("pool.size", p.Size, 1)
	if p.MinIdle < 0 || (p.Size >= 1 && p.MinIdle > p.Size) {
		v.add("pool.min_idle", "expected an integer from 0 to pool.size (%d), got %d", max(p.Size, 0), p.MinIdle)
	}
	v.positive("pool.checkout_timeout", p.CheckoutTimeout, "5s")
	v.nonNegative("pool.idle_timeout", p.IdleTimeout, "10m", "never")
	v.nonNegative("pool.max_lifetime", p.MaxLifetime, "1h", "never")
	v.atLeast("pool.prepared_cache_size", p.PreparedCacheSize, 1)
	v.atLeast("pool.max_client_conn", p.MaxClientConn, 1)
}

func (c *Config) validateBackend(v *validator) {
	b := c.Backend
	v.positive("backend.connect_timeout", b.ConnectTimeout, "5s")
	oneOf(v, "backend.tls", b.TLS, ServerTLSDisable, ServerTLSPrefer, ServerTLSRequire, ServerTLSVerifyFull)
	if b.CAFile != "" {
		v.readable("backend.ca_file", b.CAFile)
	}
}

func (c *Config) validateUsers(v *validator) {
	if len(c.Users) == 0 {
		v.add("users", "at least one user is required")
		return
	}
	seen := map[string]int{}
	for i, u := range c.Users {
		key := fmt.Sprintf("users[%d]", i)
		switch first, dup := seen[u.Name]; {
		case u.Name == "":
			v.add(key+".name", "required")
		case dup:
			v.add(key+".name", "duplicate user %q (also users[%d])", u.Name, first)
		default:
			seen[u.Name] = i
		}
		oneOf(v, key+".auth", u.Auth, AuthSCRAM, AuthMD5, AuthPassword, AuthTrust)
		if u.ScramVerifier != "" && !isSCRAMVerifier(u.ScramVerifier) {
			v.add(key+".scram_verifier", "expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> as in pg_authid (value not shown)")
		}
		if u.MD5Hash != "" && !isMD5Hash(u.MD5Hash) {
			v.add(key+".md5_hash", `expected "md5" followed by 32 hex digits as in pg_authid (value not shown)`)
		}
		// A hash pasted from pg_authid into password would be taken as the
		// password itself and fail every login with a baffling error.
		if isSCRAMVerifier(u.Password) {
			v.add(key+".password", "looks like a SCRAM verifier (value not shown); put it in scram_verifier instead")
		} else if isMD5Hash(u.Password) {
			v.add(key+".password", "looks like an md5 hash (value not shown); put it in md5_hash instead")
		}
		validateSecrets(v, key, u)
	}
}

// validateSecrets checks that the user has a secret able to answer its
// auth method: SCRAM needs the password or a SCRAM verifier, md5 needs the
// password or its md5 hash, and cleartext password can be checked against
// any of them.
func validateSecrets(v *validator, key string, u User) {
	has := u.Password != ""
	switch u.Auth {
	case AuthSCRAM:
		switch {
		case has || u.ScramVerifier != "":
		case u.MD5Hash != "":
			v.add(key, "auth scram-sha-256 cannot work with only md5_hash: an md5 hash cannot answer a SCRAM exchange; set password or scram_verifier, or use auth md5")
		default:
			v.add(key, "one of password or scram_verifier is required for auth scram-sha-256")
		}
	case AuthMD5:
		switch {
		case has || u.MD5Hash != "":
		case u.ScramVerifier != "":
			v.add(key, "auth md5 cannot work with only scram_verifier: md5 needs the password or its md5 hash, which a SCRAM verifier does not contain; set password or md5_hash, or use auth scram-sha-256")
		default:
			v.add(key, "one of password or md5_hash is required for auth md5")
		}
	case AuthPassword:
		if !has && u.ScramVerifier == "" && u.MD5Hash == "" {
			v.add(key, "one of password, scram_verifier or md5_hash is required for auth password")
		}
	}
}

// isSCRAMVerifier reports whether s has the shape PostgreSQL stores in
// pg_authid: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
func isSCRAMVerifier(s string) bool {
	rest, ok := strings.CutPrefix(s, "SCRAM-SHA-256$")
	if !ok {
		return false
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return false
	}
	iter, salt, ok := strings.Cut(params, ":")
	if n, err := strconv.Atoi(iter); !ok || err != nil || n < 1 {
		return false
	}
	if b, err := base64.StdEncoding.DecodeString(salt); err != nil || len(b) == 0 {
		return false
	}
	stored, server, ok := strings.Cut(keys, ":")
	if !ok {
		return false
	}
	for _, k := range []string{stored, server} {
		if b, err := base64.StdEncoding.DecodeString(k); err != nil || len(b) != 32 {
			return false
		}
	}
	return true
}

// isMD5Hash reports whether s is "md5" followed by 32 hex digits.
func isMD5Hash(s string) bool {
	h, ok := strings.CutPrefix(s, "md5")
	if !ok || len(h) != 32 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

var shardNameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

func (c *Config) validateShards(v *validator) {
	if len(c.Shards) == 0 {
		v.add("shards", "at least one shard is required")
		return
	}
	names := map[string]int{}
	// Shards share no servers: each must hold its own slice of the data.
	hosts := map[string]string{}
	for i, s := range c.Shards {
		key := fmt.Sprintf("shards[%d]", i)
		switch first, dup := names[s.Name]; {
		case s.Name == "":
			v.add(key+".name", "required")
		case !shardNameRE.MatchString(s.Name):
			v.add(key+".name", "expected lower-case letters, digits, _ and - only, got %q", s.Name)
		case dup:
			v.add(key+".name", "duplicate shard %q (also shards[%d])", s.Name, first)
		default:
			names[s.Name] = i
		}
		if len(s.Hosts) == 0 {
			v.add(key+".hosts", "at least one host is required")
		}
		primary := ""
		for j, h := range s.Hosts {
			hkey := fmt.Sprintf("%s.hosts[%d]", key, j)
			v.hostPort(hkey+".addr", h.Addr, true, 1)
			if first, dup := hosts[h.Addr]; dup && h.Addr != "" {
				v.add(hkey+".addr", "duplicate host %q (also %s)", h.Addr, first)
			} else {
				hosts[h.Addr] = hkey
			}
			oneOf(v, hkey+".role", h.Role, RolePrimary, RoleReplica, RoleAuto)
			if h.Role != RolePrimary {
				continue
			}
			if primary != "" {
				v.add(hkey+".role", "shard %q already has a primary (%s); use auto to follow failovers", s.Name, primary)
			} else {
				primary = hkey
			}
		}
	}
}

// maxRYWWait bounds routing.ryw_wait: a read that waits longer for a
// replica than a trip to the primary takes gains nothing by waiting, and
// a large value would turn a lagging replica into stalled clients.
const maxRYWWait = 10 * time.Second

// minMonitorInterval bounds monitor.interval: below it, checks of many
// hosts would load the servers more than they protect them.
const minMonitorInterval = 10 * time.Millisecond

// funcNameRE is an unqualified function name as the parser reports it:
// unquoted identifiers are folded to lower case.
var funcNameRE = regexp.MustCompile(`^[a-z0-9_]+$`)

func (c *Config) validateRouting(v *validator) {
	r := c.Routing
	choice(v, "routing.replica_reads", r.ReplicaReads, ReplicaReadsOn, ReplicaReadsOff, ReplicaReadsIncludePrimary)
	choice(v, "routing.replica_choice", r.ReplicaChoice, ChoiceRoundRobin, ChoiceLeastConnections, ChoiceRandom)
	choice(v, "routing.read_your_writes", r.ReadYourWrites, RYWLSN, RYWTime, RYWOff)
	if r.RYWWait < 0 || r.RYWWait > maxRYWWait {
		v.add("routing.ryw_wait", "expected a duration from 0 to %s such as 50ms (0 means no wait), got %s", maxRYWWait, r.RYWWait)
	}
	v.positive("routing.ryw_window", r.RYWWindow, "5s")
	v.atLeast("routing.parse_cache_size", r.ParseCacheSize, 1)
	for i, f := range r.WriteFunctions {
		if !funcNameRE.MatchString(f) {
			v.add(fmt.Sprintf("routing.write_functions[%d]", i), "expected a function name (lower-case letters, digits, _), got %q", f)
		}
	}
}

func (c *Config) validateMonitor(v *validator) {
	m := c.Monitor
	if m.Interval < minMonitorInterval {
		v.add("monitor.interval", "expected a duration >= %s such as 100ms, got %s", minMonitorInterval, m.Interval)
	}
	v.positive("monitor.timeout", m.Timeout, "1s")
	switch {
	case m.BanMax <= 0:
		v.positive("monitor.ban_max", m.BanMax, "10s")
		v.positive("monitor.ban_min", m.BanMin, "250ms")
	case m.BanMin <= 0 || m.BanMin > m.BanMax:
		v.add("monitor.ban_min", "expected a duration > 0 and <= monitor.ban_max (%s), got %s", m.BanMax, m.BanMin)
	}
	if m.MaxReplicaLag < 0 {
		v.add("monitor.max_replica_lag", "expected a duration >= 0 such as 10s (0 means no limit), got %s", m.MaxReplicaLag)
	}
	if m.MaxReplicaLagBytes < 0 {
		v.add("monitor.max_replica_lag_bytes", "expected a size >= 0 such as 64MB (0 means no limit), got %s", m.MaxReplicaLagBytes)
	}
	// Without a user, the password would silently go with the first
	// user's server_user, which is unlikely to be what was meant.
	if m.User == "" && m.Password != "" {
		v.add("monitor.password", "set without monitor.user (value not shown); set both, or neither to use the first user's server credentials")
	}
	if m.Database == "" {
		v.add("monitor.database", "required (default postgres)")
	}
}

// choice is oneOf for the routing and monitor keys, whose messages read
// as a sentence: "expected on, off or include_primary".
func choice[T ~string](v *validator, key string, got T, allowed ...T) {
	if slices.Contains(allowed, got) {
		return
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	last := len(names) - 1
	v.add(key, "expected %s or %s, got %q", strings.Join(names[:last], ", "), names[last], got)
}
