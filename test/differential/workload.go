package differential

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Distribution names the workload's keys use (and the shard map must
// give its distributions).
const (
	DistUsers   = "users"   // hash on bigint: users.id, orders.user_id
	DistEvents  = "events"  // range on bigint: events.id
	DistTenants = "tenants" // directory on text: tenants.id
)

// Workload generates the statements of one seeded run. Its statements
// depend only on the seed: the key pools below grow as the workload
// inserts, whether or not the inserts succeed.
type Workload struct {
	r *rand.Rand
	// nextUser is the next never-used user id; ids below it may exist.
	nextUser  int64
	nextEvent int64
	nextAudit int64
	// tenants are the tenant keys in use; new ones are appended.
	tenants    []string
	nextTenant int
	// nextCountry numbers the extra countries the workload writes (the
	// twelve seeded ones stay, so joins keep finding them).
	nextCountry int
	// nextCopyOrder and nextCopyEvent number the rows COPY adds, so few
	// of them conflict.
	nextCopyOrder int64
	nextCopyEvent int64
	// nextTxnOrder numbers the orders transactions add.
	nextTxnOrder int64
}

// NewWorkload returns the workload of seed.
func NewWorkload(seed uint64) *Workload {
	return &Workload{
		r:        rand.New(rand.NewPCG(seed, seed^0x5eed_d1ff)),
		nextUser: seedUsers + 1, nextEvent: seedEventMax + 1, nextAudit: seedAudit + 1,
		tenants: append([]string(nil), specialTenants...), nextTenant: seedTenants,
	}
}

// Sizes of the seeded data.
const (
	seedUsers    = 300
	seedEventMax = 2000 // events every 5 ids from 5 to 2000
	seedTenants  = 60
	seedAudit    = 40
)

// extremeUsers are user ids at the edges of bigint, hashed like any other.
var extremeUsers = []int64{-9223372036854775808, -1, 0, 9223372036854775807}

// specialTenants are tenant keys that test text handling: case, bytes
// above ASCII, quotes, commas and spaces (in CSV, array literals and
// identifiers), the empty string.
var specialTenants = []string{"acme", "Acme", "ß-corp", "über", "zeta 9", "", "O'Brien", "a,b", `q"uote`, "Z"}

// Countries: the seeded ones, which users refer to.
var countryCodes = []string{"AR", "AT", "BR", "CI", "DE", "ES", "FR", "IN", "JP", "NG", "US", "ZA"}
var countryNames = []string{"Argentina", "Österreich", "Brasil", "Côte d'Ivoire", "Deutschland", "España", "France", "India", "日本", "Nigeria", "United States", "South Africa"}

var (
	statuses = []string{"new", "paid", "shipped", "cancelled"}
	kinds    = []string{"click", "view", "buy", "error", "login"}
	plans    = []string{"free", "pro", "team", "enterprise"}
	names    = []string{"ann", "bob", "cé", "dan", "eve", "zoë", "Ål", "o'neil", "x y", "Bob"}
)

// Schema is the DDL, for the proxy (which runs it on every shard) and
// the reference alike.
func Schema() []string {
	return []string{
		"create table users (id bigint primary key, name text not null, score int, country text, created date not null)",
		"create table orders (user_id bigint not null, id bigint not null, amount numeric(12,2) not null, status text not null, primary key (user_id, id))",
		"create table events (id bigint primary key, kind text not null, payload text)",
		"create table tenants (id text primary key, plan text not null, seats int not null check (seats >= 0))",
		"create table countries (code text primary key, name text not null)",
		"create table audit (id bigint primary key, note text not null)",
	}
}

// ReferenceRows fills the reference table countries; it is run directly
// on every shard and on the reference, not through the proxy.
func ReferenceRows() string {
	var rows []string
	for i, c := range countryCodes {
		rows = append(rows, fmt.Sprintf("(%s, %s)", quote(c), quote(countryNames[i])))
	}
	return "insert into countries (code, name) values " + strings.Join(rows, ", ")
}

// Seed returns the initial rows as single-row inserts, one shard each.
func (w *Workload) Seed() []Step {
	var steps []Step
	add := func(sql string, args []any, key Key) {
		st := Step{Category: "seed", Kind: KindExec, SQL: sql, Args: args, Mode: w.mode()}
		if key.Dist != "" {
			st.Keys = []Key{key}
		}
		steps = append(steps, st)
	}
	users := append([]int64(nil), extremeUsers...)
	for id := int64(1); id <= seedUsers; id++ {
		users = append(users, id)
	}
	for _, id := range users {
		add("insert into users (id, name, score, country, created) values ($1, $2, $3, $4, $5::date)",
			[]any{id, w.name(id), w.score(), w.country(), w.date()}, userKey(id))
		for o := range w.r.IntN(4) {
			add("insert into orders (user_id, id, amount, status) values ($1, $2, $3::numeric, $4)",
				[]any{id, int64(o + 1), w.amount(), pick(w.r, statuses)}, userKey(id))
		}
	}
	for id := int64(5); id <= seedEventMax; id += 5 {
		add("insert into events (id, kind, payload) values ($1, $2, $3)", []any{id, pick(w.r, kinds), w.payload()}, eventKey(id))
	}
	for i := range seedTenants {
		t := fmt.Sprintf("t%03d", i)
		w.tenants = append(w.tenants, t)
	}
	for _, t := range w.tenants {
		add("insert into tenants (id, plan, seats) values ($1, $2, $3)", []any{t, pick(w.r, plans), int64(w.r.IntN(60))}, tenantKey(t))
	}
	for id := int64(1); id <= seedAudit; id++ {
		add("insert into audit (id, note) values ($1, $2)", []any{id, fmt.Sprintf("seed %d", id)}, Key{})
	}
	return steps
}

// template makes one step.
type template struct {
	weight int
	make   func(w *Workload) Step
}

var templates []template

func init() {
	templates = append(templates, readTemplates...)
	templates = append(templates, writeTemplates...)
	templates = append(templates, copyTemplates...)
	templates = append(templates, txnTemplates...)
	templates = append(templates, edgeTemplates...)
}

var totalWeight = func() func() int {
	n := 0
	return func() int {
		if n == 0 {
			for _, t := range templates {
				n += t.weight
			}
		}
		return n
	}
}()

// Next returns the workload's next step.
func (w *Workload) Next() Step {
	n := w.r.IntN(totalWeight())
	for _, t := range templates {
		if n < t.weight {
			return t.make(w)
		}
		n -= t.weight
	}
	panic("unreachable")
}

// Values.

func (w *Workload) name(id int64) string {
	return fmt.Sprintf("%s-%d", pick(w.r, names), (id%97+97)%97)
}

func (w *Workload) score() any {
	if w.r.IntN(12) == 0 {
		return nil
	}
	return int64(w.r.IntN(251) - 50)
}

func (w *Workload) country() any {
	if w.r.IntN(10) == 0 {
		return nil
	}
	return pick(w.r, countryCodes)
}

func (w *Workload) date() string {
	return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, w.r.IntN(700)).Format("2006-01-02")
}

func (w *Workload) amount() string {
	return fmt.Sprintf("%d.%02d", w.r.IntN(1000), w.r.IntN(100))
}

func (w *Workload) payload() any {
	if w.r.IntN(5) == 0 {
		return nil
	}
	return fmt.Sprintf("p%d", w.r.IntN(1000))
}

// Keys.

// user picks a user id: mostly one that may exist, sometimes an extreme
// or a fresh one.
func (w *Workload) user() int64 {
	switch n := w.r.IntN(20); {
	case n == 0:
		return pick(w.r, extremeUsers)
	case n == 1:
		return w.freshUser()
	}
	return 1 + w.r.Int64N(w.nextUser-1)
}

// newUser picks the id of a user to insert: fresh, or now and then one
// that may exist (a unique violation, or a conflict to resolve).
func (w *Workload) newUser() int64 {
	if w.r.IntN(8) == 0 {
		return w.user()
	}
	return w.freshUser()
}

func (w *Workload) freshUser() int64 {
	w.nextUser++
	return w.nextUser - 1
}

// users picks n distinct user ids.
func (w *Workload) users(n int, fresh bool) []int64 {
	seen := map[int64]bool{}
	var ids []int64
	for len(ids) < n {
		id := w.user()
		if fresh {
			id = w.newUser()
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

func (w *Workload) event() int64 {
	if w.r.IntN(15) == 0 {
		return -w.r.Int64N(50) // below every seeded id: the open low range
	}
	return 1 + w.r.Int64N(w.nextEvent+200)
}

func (w *Workload) newEvent() int64 {
	if w.r.IntN(6) == 0 {
		return w.event()
	}
	// Fresh ids skip the multiples of 5 the seed used.
	id := w.r.Int64N(seedEventMax + 400)
	if id%5 == 0 {
		id++
	}
	return id
}

func (w *Workload) tenant() string {
	if w.r.IntN(12) == 0 {
		return w.newTenant()
	}
	return pick(w.r, w.tenants)
}

func (w *Workload) newTenant() string {
	if w.r.IntN(6) == 0 {
		return pick(w.r, w.tenants)
	}
	t := fmt.Sprintf("t%03d", w.nextTenant)
	w.nextTenant++
	w.tenants = append(w.tenants, t)
	return t
}

func (w *Workload) audit() int64 { return 1 + w.r.Int64N(w.nextAudit) }

func userKey(id int64) Key   { return Key{Dist: DistUsers, Value: strconv.FormatInt(id, 10)} }
func eventKey(id int64) Key  { return Key{Dist: DistEvents, Value: strconv.FormatInt(id, 10)} }
func tenantKey(t string) Key { return Key{Dist: DistTenants, Value: t} }

func userKeys(ids []int64) []Key {
	keys := make([]Key, len(ids))
	for i, id := range ids {
		keys[i] = userKey(id)
	}
	return keys
}

// How statements are sent.

// mode picks the protocol: the simple one, or one of pgx's extended ones.
func (w *Workload) mode() pgx.QueryExecMode {
	switch n := w.r.IntN(20); {
	case n < 7:
		return pgx.QueryExecModeSimpleProtocol
	case n < 10:
		return pgx.QueryExecModeExec
	case n < 15:
		return pgx.QueryExecModeCacheStatement
	case n < 17:
		return pgx.QueryExecModeDescribeExec
	default:
		return pgx.QueryExecModeCacheDescribe
	}
}

// formats picks the result formats of an extended-protocol query.
func (w *Workload) formats(m pgx.QueryExecMode) *int16 {
	if m == pgx.QueryExecModeSimpleProtocol || m == pgx.QueryExecModeExec {
		return nil
	}
	switch w.r.IntN(5) {
	case 0:
		f := int16(0)
		return &f
	case 1:
		f := int16(1)
		return &f
	}
	return nil
}

// query makes a step of b's statement, sent with a random mode.
func (w *Workload) query(category string, b *sqlb, sql string, o Order) Step {
	m := w.mode()
	return Step{Category: category, Kind: KindQuery, SQL: sql, Args: b.args, Mode: m, Formats: w.formats(m), Order: o}
}

// write makes a step of a statement without rows: through Exec or Query.
func (w *Workload) write(category string, b *sqlb, sql string, keys []Key) Step {
	st := w.query(category, b, sql, Order{})
	if w.r.IntN(2) == 0 {
		st.Kind, st.Formats = KindExec, nil
	}
	st.Keys = keys
	return st
}

// sqlb collects a statement's values, as bind parameters or, when lit,
// as literals in the text.
type sqlb struct {
	lit  bool
	args []any
}

func (w *Workload) sql() *sqlb { return &sqlb{lit: w.r.IntN(10) < 3} }

func (b *sqlb) param(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

func (b *sqlb) int(v int64) string {
	if b.lit {
		return strconv.FormatInt(v, 10)
	}
	return b.param(v)
}

func (b *sqlb) text(s string) string {
	if b.lit {
		return quote(s)
	}
	return b.param(s)
}

// num is a numeric value, written as its text.
func (b *sqlb) num(s string) string {
	if b.lit {
		return s
	}
	return b.param(s) + "::numeric"
}

func (b *sqlb) date(s string) string {
	if b.lit {
		return "date " + quote(s)
	}
	return b.param(s) + "::date"
}

// any is a nullable value (int64, string or nil).
func (b *sqlb) any(v any) string {
	switch x := v.(type) {
	case nil:
		if b.lit {
			return "null"
		}
		return b.param(nil)
	case int64:
		return b.int(x)
	case string:
		return b.text(x)
	}
	panic(fmt.Sprintf("value of type %T", v))
}

// ints is a list of keys: for key IN (...) when lit, else an array
// parameter for key = ANY($n).
func (b *sqlb) intList(col string, ids []int64) string {
	if b.lit {
		parts := make([]string, len(ids))
		for i, id := range ids {
			parts[i] = strconv.FormatInt(id, 10)
		}
		return col + " in (" + strings.Join(parts, ", ") + ")"
	}
	return col + " = any(" + b.param(ids) + ")"
}

func (b *sqlb) textList(col string, keys []string) string {
	if b.lit {
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = quote(k)
		}
		return col + " in (" + strings.Join(parts, ", ") + ")"
	}
	return col + " = any(" + b.param(keys) + ")"
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// some picks between lo and hi items of s, distinct, in random order.
func some[T any](r *rand.Rand, s []T, lo, hi int) []T {
	n := lo + r.IntN(hi-lo+1)
	perm := r.Perm(len(s))
	out := make([]T, 0, n)
	for _, i := range perm[:min(n, len(s))] {
		out = append(out, s[i])
	}
	return out
}

// Snapshot reads every table whole, in key order: run now and then, it
// shows soon after which step the two sides' data parted.
func Snapshot() []Step {
	var steps []Step
	for _, q := range []struct {
		table, order string
		all          bool
	}{
		{"users", "id", true}, {"orders", "user_id, id", true}, {"events", "id", true},
		{"tenants", "id", true}, {"countries", "code", false}, {"audit", "id", false},
	} {
		st := Step{Category: "snapshot", Kind: KindQuery, SQL: fmt.Sprintf("select * from %s order by %s", q.table, q.order),
			Mode: pgx.QueryExecModeSimpleProtocol, Order: Order{Total: true}, AllShards: q.all}
		steps = append(steps, st)
	}
	return steps
}
