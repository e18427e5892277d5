package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// envPrefix starts the name of every environment variable Load reads.
const envPrefix = "SHARDGATE_"

// setting is one scalar key, settable from the file, the environment and a
// flag. Lists are deliberately absent: see the package documentation.
type setting struct {
	key   string
	usage string
	get   func(*Config) any // reads the key's field, for defaults
}

var settings = []setting{
	{"listen.addr", "host:port to accept clients on", func(c *Config) any { return c.Listen.Addr }},
	{"listen.reuse_port", "let several shardgate processes listen on listen.addr (SO_REUSEPORT), for rolling restarts", func(c *Config) any { return c.Listen.ReusePort }},
	{"listen.tls.mode", "client TLS: disable, allow or require", func(c *Config) any { return c.Listen.TLS.Mode }},
	{"listen.tls.cert_file", "PEM certificate shown to clients", func(c *Config) any { return c.Listen.TLS.CertFile }},
	{"listen.tls.key_file", "PEM private key of listen.tls.cert_file", func(c *Config) any { return c.Listen.TLS.KeyFile }},
	{"pool.mode", "pool mode: transaction, session or statement", func(c *Config) any { return c.Pool.Mode }},
	{"pool.size", "max server connections per (host, user, database)", func(c *Config) any { return c.Pool.Size }},
	{"pool.min_idle", "idle server connections kept per pool", func(c *Config) any { return c.Pool.MinIdle }},
	{"pool.checkout_timeout", "max wait for a server connection", func(c *Config) any { return c.Pool.CheckoutTimeout }},
	{"pool.idle_timeout", "close server connections idle this long (0: never)", func(c *Config) any { return c.Pool.IdleTimeout }},
	{"pool.max_lifetime", "close server connections this old (0: never)", func(c *Config) any { return c.Pool.MaxLifetime }},
	{"pool.prepared_cache_size", "prepared statements kept per server connection", func(c *Config) any { return c.Pool.PreparedCacheSize }},
	{"pool.max_client_conn", "max connected clients", func(c *Config) any { return c.Pool.MaxClientConn }},
	{"backend.connect_timeout", "max time to connect to a server", func(c *Config) any { return c.Backend.ConnectTimeout }},
	{"backend.tls", "server TLS: disable, prefer, require or verify-full", func(c *Config) any { return c.Backend.TLS }},
	{"backend.ca_file", "PEM CA bundle for server certificates (empty: system roots)", func(c *Config) any { return c.Backend.CAFile }},
	{"sharding.two_phase_commit", "commit transactions that write on several shards with two-phase commit (needs catalog.dsn)", func(c *Config) any { return c.Sharding.TwoPhaseCommit }},
	{"sharding.node_name", "this proxy's name in two-phase commit ids; unique per proxy, stable across restarts (empty: host/listen address)", func(c *Config) any { return c.Sharding.NodeName }},
	{"catalog.dsn", "connection string of the shard map's catalog database (empty: the map is the file's)", func(c *Config) any { return c.Catalog.DSN }},
	{"catalog.poll_interval", "how often the catalog's map version is checked, besides notifications (>= 10ms)", func(c *Config) any { return c.Catalog.PollInterval }},
	{"catalog.directory_cache", "directory entries cached in memory", func(c *Config) any { return c.Catalog.DirectoryCache }},
	{"routing.replica_reads", "reads to replicas: on, off or include_primary", func(c *Config) any { return c.Routing.ReplicaReads }},
	{"routing.replica_choice", "replica picked: round_robin, least_connections or random", func(c *Config) any { return c.Routing.ReplicaChoice }},
	{"routing.zone", "this shardgate's zone; replicas in it are preferred (empty: none)", func(c *Config) any { return c.Routing.Zone }},
	{"routing.read_your_writes", "read-your-writes: lsn, time or off", func(c *Config) any { return c.Routing.ReadYourWrites }},
	{"routing.ryw_wait", "lsn mode: max wait for a replica to catch up (0: none, at most 10s)", func(c *Config) any { return c.Routing.RYWWait }},
	{"routing.ryw_window", "time mode: reads go to the primary this long after a write", func(c *Config) any { return c.Routing.RYWWindow }},
	{"routing.parse_cache_size", "parsed statements remembered for routing", func(c *Config) any { return c.Routing.ParseCacheSize }},
	{"monitor.interval", "how often each host's role and WAL position are checked (>= 10ms)", func(c *Config) any { return c.Monitor.Interval }},
	{"monitor.timeout", "max time for one check", func(c *Config) any { return c.Monitor.Timeout }},
	{"monitor.ban_min", "first ban of a host that fails a check", func(c *Config) any { return c.Monitor.BanMin }},
	{"monitor.ban_max", "longest ban, reached by doubling monitor.ban_min", func(c *Config) any { return c.Monitor.BanMax }},
	{"monitor.max_replica_lag", "replicas further behind take no reads (0: no limit)", func(c *Config) any { return c.Monitor.MaxReplicaLag }},
	{"monitor.max_replica_lag_bytes", "same in bytes of WAL, such as 64MB (0: no limit)", func(c *Config) any { return c.Monitor.MaxReplicaLagBytes }},
	{"monitor.user", "role of the monitor's connections (empty: the first user's server_user)", func(c *Config) any { return c.Monitor.User }},
	{"monitor.password", "password of monitor.user", func(c *Config) any { return c.Monitor.Password }},
	{"monitor.database", "database the monitor connects to", func(c *Config) any { return c.Monitor.Database }},
	{"admin.database", "database name clients connect to for the admin console", func(c *Config) any { return c.Admin.Database }},
	{"metrics.listen", "host:port serving /metrics, /healthz and /readyz over HTTP (empty: off)", func(c *Config) any { return c.Metrics.Listen }},
	{"shutdown.drain_timeout", "on SIGTERM or SHUTDOWN, max wait for running transactions (0: none)", func(c *Config) any { return c.Shutdown.DrainTimeout }},
	{"log.level", "log level: debug, info, warn or error", func(c *Config) any { return c.Log.Level }},
	{"log.format", "log format: auto, text or json", func(c *Config) any { return c.Log.Format }},
	{"log.slow_query", "log statements slower than this (0: off)", func(c *Config) any { return c.Log.SlowQuery }},
	{"log.parameters", "show bind parameters and query literals in the slow query and error logs", func(c *Config) any { return c.Log.Parameters }},
	{"runtime.max_procs", "max OS threads running Go code at once (0: all CPUs)", func(c *Config) any { return c.Runtime.MaxProcs }},
}

// envOnly are the settings that get no flag: they are secrets (a DSN may
// hold a password), and a process's arguments are visible to every local
// user (ps, /proc).
var envOnly = map[string]bool{"monitor.password": true, "catalog.dsn": true}

// envVar is the environment variable that sets key.
func envVar(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// RegisterFlags defines one flag per scalar key on fs, named after the key
// (--listen.addr, --pool.mode, --pool.size, --log.level, ...), with the
// built-in defaults, except for secrets, which are read from the
// environment only. Pass the same fs to Load after parsing. It panics, as
// pflag does, if fs already has one of these flags.
func RegisterFlags(fs *pflag.FlagSet) {
	def := Default()
	for _, s := range settings {
		if envOnly[s.key] {
			continue
		}
		usage := fmt.Sprintf("%s (env %s)", s.usage, envVar(s.key))
		switch v := reflect.ValueOf(s.get(def)); {
		case v.Type() == durationType:
			fs.Duration(s.key, time.Duration(v.Int()), usage)
		case v.Kind() == reflect.Int:
			fs.Int(s.key, int(v.Int()), usage)
		case v.Kind() == reflect.Bool:
			fs.Bool(s.key, v.Bool(), usage)
		default:
			// Sizes and enums are read as text, as in the file.
			fs.String(s.key, fmt.Sprint(v.Interface()), usage)
		}
	}
}

// Load reads the configuration from the built-in defaults, the YAML file at
// path, the environment and flags (see the package documentation), then
// validates it. path may be empty, in which case there are no users or
// shards and validation says so. flags may be nil; otherwise only its flags
// named after a key and set by the user take part, so the caller's other
// flags (such as the one giving path) do no harm.
//
// Every problem found is returned at once as [Errors].
func Load(path string, flags *pflag.FlagSet) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	def := Default()
	for _, s := range settings {
		v.SetDefault(s.key, s.get(def))
		// Explicit bindings rather than AutomaticEnv, so that a variable
		// such as SHARDGATE_USERS cannot replace a list with a string.
		if err := v.BindEnv(s.key, envVar(s.key)); err != nil {
			return nil, err
		}
		if flags == nil || envOnly[s.key] {
			continue
		}
		if f := flags.Lookup(s.key); f != nil {
			if err := v.BindPFlag(s.key, f); err != nil {
				return nil, err
			}
		}
	}

	var problems Errors
	if path == "" {
		problems = append(problems, errors.New("no config file given: users and shards can only be set in a config file"))
	} else {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading config file: %w", err)
		}
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			// Decoding the rest would only report the defaults as if
			// they were the user's settings.
			return nil, yamlErrors(path, data, err)
		}
	}

	cfg := &Config{}
	err := v.Unmarshal(cfg, func(dc *mapstructure.DecoderConfig) {
		dc.DecodeHook = decodeHook
		dc.WeaklyTypedInput = false
		dc.ErrorUnused = true
	})
	decodeProblems := decodeErrors(err)
	problems = append(problems, decodeProblems...)

	cfg.applyItemDefaults()
	var verr Errors
	if errors.As(cfg.Validate(), &verr) {
		// A key that failed to decode holds a zero value; validating it too
		// would add a second, misleading message for the same mistake.
		for _, p := range verr {
			var fe *FieldError
			if errors.As(p, &fe) && coveredBy(fe.Key, decodeProblems) {
				continue
			}
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			var fe *FieldError
			if errors.As(p, &fe) {
				fe.Msg += source(fe.Key, flags)
			}
		}
		return nil, problems
	}
	return cfg, nil
}

// coveredBy reports whether key is, contains or is inside a key that
// already failed to decode.
func coveredBy(key string, problems Errors) bool {
	for _, p := range problems {
		var fe *FieldError
		if !errors.As(p, &fe) || fe.Key == "" {
			continue
		}
		if key == fe.Key || inside(key, fe.Key) || inside(fe.Key, key) {
			return true
		}
	}
	return false
}

func inside(key, parent string) bool {
	return strings.HasPrefix(key, parent+".") || strings.HasPrefix(key, parent+"[")
}

// source names the flag or environment variable that set key, if one did,
// because a user looking for a bad value in the file would not find it.
func source(key string, flags *pflag.FlagSet) string {
	if !isSetting(key) {
		return ""
	}
	if flags != nil {
		if f := flags.Lookup(key); f != nil && f.Changed {
			return " (from flag --" + key + ")"
		}
	}
	// Viper ignores empty variables, so they cannot be the source.
	if os.Getenv(envVar(key)) != "" {
		return " (from " + envVar(key) + ")"
	}
	return ""
}

func isSetting(key string) bool {
	for _, s := range settings {
		if s.key == key {
			return true
		}
	}
	return false
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlErrors turns a YAML parse error into "path:line: message" lines, the
// form editors can jump to.
func yamlErrors(path string, data []byte, err error) error {
	var lines []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		lines = te.Errors
	} else {
		var pe viper.ConfigParseError
		if errors.As(err, &pe) {
			err = pe.Unwrap()
		}
		lines = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var errs Errors
	for _, l := range lines {
		m := yamlLineRE.FindStringSubmatch(l)
		if m == nil {
			errs = append(errs, fmt.Errorf("%s: %s", path, l))
			continue
		}
		n, _ := strconv.Atoi(m[1])
		msg := m[2]
		switch {
		case strings.Contains(msg, "cannot unmarshal") && strings.Contains(msg, "into map"):
			msg = "expected a mapping of keys (listen:, pool:, users:, ...) at the top level"
		case strings.Contains(msg, "cannot start any token") && lineHasTab(data, n):
			msg += " (indent with spaces: YAML does not allow tabs)"
		}
		errs = append(errs, fmt.Errorf("%s:%d: %s", path, n, msg))
	}
	return errs
}

func lineHasTab(data []byte, n int) bool {
	lines := bytes.Split(data, []byte("\n"))
	return n >= 1 && n <= len(lines) && bytes.ContainsRune(lines[n-1], '\t')
}

var (
	durationType       = reflect.TypeFor[time.Duration]()
	byteSizeType       = reflect.TypeFor[ByteSize]()
	replicaReadsType   = reflect.TypeFor[ReplicaReads]()
	readYourWritesType = reflect.TypeFor[ReadYourWrites]()
)

// decodeHook converts every scalar itself, instead of relying on
// mapstructure's weak typing, so that messages say what was expected in
// the user's terms and so that surprising conversions are refused: the
// integer 5 is not 5ns, and the YAML number 0123 (octal 83) does not
// silently become the password "83".
func decodeHook(from, to reflect.Type, data any) (any, error) {
	switch {
	case to == durationType:
		return toDuration(from, data)
	case to == byteSizeType:
		return toByteSize(from, data)
	case to == replicaReadsType:
		return toReplicaReads(from, data)
	case to == readYourWritesType && from.Kind() == reflect.Bool:
		// Unquoted off is a boolean in YAML 1.1; true has no meaning here.
		if !reflect.ValueOf(data).Bool() {
			return string(RYWOff), nil
		}
		return nil, &typeError{want: "lsn, time or off", got: data}
	case to.Kind() == reflect.String:
		if from.Kind() != reflect.String {
			return nil, &typeError{want: "a string", got: data, hint: " (put it in quotes)"}
		}
		return reflect.ValueOf(data).String(), nil
	case to.Kind() == reflect.Int:
		return toInt(from, data)
	case to.Kind() == reflect.Bool:
		return toBool(from, data)
	case to.Kind() == reflect.Slice && from.Kind() != reflect.Slice:
		return nil, &typeError{want: "a list", got: data}
	case to.Kind() == reflect.Struct && from.Kind() != reflect.Map:
		return nil, &typeError{want: "a mapping of keys", got: data}
	}
	return data, nil
}

func toDuration(from reflect.Type, data any) (any, error) {
	if from == durationType {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		s := strings.TrimSpace(reflect.ValueOf(data).String())
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, &typeError{want: "a duration such as 5s, 250ms or 10m", got: data}
		}
		return d, nil
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Float64:
		// 0 is a natural way to write "never" and needs no unit.
		if reflect.ValueOf(data).IsZero() {
			return time.Duration(0), nil
		}
	}
	return nil, &typeError{want: "a duration with a unit such as 5s, 250ms or 10m", got: data}
}

func toInt(from reflect.Type, data any) (any, error) {
	v := reflect.ValueOf(data)
	switch from.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.Uint() <= math.MaxInt {
			return int(v.Uint()), nil
		}
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); f == math.Trunc(f) && math.Abs(f) <= math.MaxInt32 {
			return int(f), nil
		}
	case reflect.String:
		if n, err := strconv.Atoi(strings.TrimSpace(v.String())); err == nil {
			return n, nil
		}
	}
	return nil, &typeError{want: "an integer", got: data}
}

// toBool accepts booleans, and their text from the environment or a flag.
func toBool(from reflect.Type, data any) (any, error) {
	switch from.Kind() {
	case reflect.Bool:
		return data, nil
	case reflect.String:
		if b, err := strconv.ParseBool(strings.TrimSpace(reflect.ValueOf(data).String())); err == nil {
			return b, nil
		}
	}
	return nil, &typeError{want: "true or false", got: data}
}

// typeError is a value of the wrong type. It never shows a string's
// content unless asked for a number or duration, so a mistyped secret is
// not echoed into logs.
type typeError struct {
	want string
	got  any
	hint string
}

func (e *typeError) Error() string {
	return fmt.Sprintf("expected %s, got %s%s", e.want, describe(e.got, e.want != "a string"), e.hint)
}

// describe names a decoded value for a message: its text when showText
// allows, otherwise only its kind.
func describe(v any, showText bool) string {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		if showText {
			return strconv.Quote(rv.String())
		}
		return "a string"
	case reflect.Map:
		return "a mapping"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Bool:
		if showText {
			return strconv.FormatBool(rv.Bool())
		}
		return "a boolean"
	case reflect.Invalid:
		return "nothing"
	}
	if showText {
		return fmt.Sprint(v)
	}
	return "a number"
}

// decodeErrors flattens mapstructure's tree of joined errors into one
// problem per key.
func decodeErrors(err error) Errors {
	if err == nil {
		return nil
	}
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		var out Errors
		for _, e := range multi.Unwrap() {
			out = append(out, decodeErrors(e)...)
		}
		return out
	}
	de, ok := err.(*mapstructure.DecodeError)
	if !ok {
		// mapstructure wraps the whole tree in a one-line preamble.
		if inner := errors.Unwrap(err); inner != nil {
			return decodeErrors(inner)
		}
		return Errors{err}
	}
	key, inner := de.Name(), de.Unwrap()
	// Newer mapstructure names the root by its Go type; keys are ours.
	key = strings.TrimPrefix(strings.TrimPrefix(key, "config.Config"), ".")
	// ErrorUnused reports the unknown keys of one mapping together, as
	// text; this prefix is the only way to tell them apart.
	if rest, ok := strings.CutPrefix(inner.Error(), "has invalid keys: "); ok {
		var out Errors
		for _, k := range strings.Split(rest, ", ") {
			out = append(out, unknownKey(key, k))
		}
		return out
	}
	var te *typeError
	var ute *mapstructure.UnconvertibleTypeError
	switch {
	case errors.As(inner, &te):
		return Errors{&FieldError{Key: key, Msg: te.Error()}}
	case errors.As(inner, &ute):
		msg := fmt.Sprintf("expected %s, got %s", ute.Expected.Type(), describe(ute.Value, false))
		return Errors{&FieldError{Key: key, Msg: msg}}
	}
	return Errors{&FieldError{Key: key, Msg: inner.Error()}}
}

// unknownKey builds the error for key name inside the mapping at parent,
// suggesting the closest known key since most unknown keys are typos.
func unknownKey(parent, name string) error {
	full := name
	if parent != "" {
		full = parent + "." + name
	}
	e := &UnknownKeyError{Key: full}
	t := typeAt(parent)
	if t == nil {
		return e
	}
	best, bestDist := "", 3
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("mapstructure")
		if d := editDistance(name, tag); d < bestDist {
			best, bestDist = tag, d
		}
	}
	if best != "" && bestDist <= len(name)/2 {
		e.Suggestion = strings.TrimSuffix(full, name) + best
	}
	return e
}

var indexRE = regexp.MustCompile(`\[\d+\]`)

// typeAt returns the struct type at a decoded key path such as
// "shards[1].hosts[0]", or nil.
func typeAt(path string) reflect.Type {
	t := reflect.TypeFor[Config]()
	if path == "" {
		return t
	}
	for _, part := range strings.Split(indexRE.ReplaceAllString(path, ""), ".") {
		found := false
		for i := range t.NumField() {
			if f := t.Field(i); f.Tag.Get("mapstructure") == part {
				t, found = f.Type, true
				break
			}
		}
		if !found {
			return nil
		}
		if t.Kind() == reflect.Slice {
			t = t.Elem()
		}
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	return t
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
