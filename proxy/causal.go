package proxy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shardgate/shardgate/pool"
)

// causalLSN is a client's read-your-writes position on each shard, by
// shard index: the WAL position its later reads there must find replayed.
type causalLSN []pool.LSN

// at returns the position owed on a shard.
func (c causalLSN) at(shard int) pool.LSN {
	if shard < len(c) {
		return c[shard]
	}
	return 0
}

// raise records a commit position on a shard; positions only grow.
func (c *causalLSN) raise(shard int, lsn pool.LSN) {
	for len(*c) <= shard {
		*c = append(*c, 0)
	}
	if lsn > (*c)[shard] {
		(*c)[shard] = lsn
	}
}

// format writes the positions as SHOW shardgate.causal_lsn prints them: a
// bare position with one shard, name=position pairs with several.
func (c causalLSN) format(names []string) string {
	if len(names) <= 1 {
		return c.at(0).String()
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + c.at(i).String()
	}
	return strings.Join(parts, ",")
}

// set raises the positions from a SET shardgate.causal_lsn value, in the
// form format prints. A bare position with several shards is owed on every
// shard: positions of different servers do not compare, so that is the
// safe reading of a value from an older client.
func (c *causalLSN) set(value string, names []string) error {
	bad := func() error {
		return &Error{Code: "22023", Message: fmt.Sprintf("invalid value for shardgate.causal_lsn: %q", value),
			Hint: "expected a WAL position such as 0/16B3748, or shard=position pairs such as s0=0/16B3748,s1=0/3000060, as SHOW shardgate.causal_lsn prints them"}
	}
	value = strings.TrimSpace(value)
	if !strings.Contains(value, "=") {
		lsn, err := pool.ParseLSN(value)
		if err != nil {
			return bad()
		}
		for i := range max(len(names), 1) {
			c.raise(i, lsn)
		}
		return nil
	}
	type pos struct {
		shard int
		lsn   pool.LSN
	}
	var got []pos
	for _, part := range strings.Split(value, ",") {
		name, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return bad()
		}
		i := slices.Index(names, strings.TrimSpace(name))
		lsn, err := pool.ParseLSN(strings.TrimSpace(v))
		if i < 0 || err != nil {
			return bad()
		}
		got = append(got, pos{i, lsn})
	}
	for _, p := range got {
		c.raise(p.shard, p.lsn)
	}
	return nil
}
