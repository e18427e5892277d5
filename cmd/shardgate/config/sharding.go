package config

import (
	"errors"

	"github.com/shardgate/shardgate/shardmap"
)

// ShardingConfig says which shard owns which rows. With no distributions
// and no reference tables, every statement runs on the default shard.
type ShardingConfig struct {
	// DefaultShard holds the tables that are in no distribution; empty
	// means the first shard.
	DefaultShard    string                      `mapstructure:"default_shard" yaml:"default_shard"`
	Distributions   []shardmap.DistributionSpec `mapstructure:"distributions" yaml:"distributions"`
	ReferenceTables []string                    `mapstructure:"reference_tables" yaml:"reference_tables"`
	// TwoPhaseCommit lets a transaction write on several shards, committed
	// with PREPARE TRANSACTION and COMMIT PREPARED; the decision to commit
	// is recorded in the catalog, which it therefore needs. Off, such a
	// transaction is refused before anything commits.
	TwoPhaseCommit bool `mapstructure:"two_phase_commit" yaml:"two_phase_commit"`
	// NodeName names this proxy in the ids of the transactions it
	// prepares, so that a restarted proxy resolves its own in-doubt ones
	// and no other's; empty means host name/listen address. It must be
	// unique in a fleet and stay the same across restarts.
	NodeName string `mapstructure:"node_name" yaml:"node_name"`
}

// ShardNames lists the configured shards' names in order: a shard's index
// in the map is its place in the config.
func (c *Config) ShardNames() []string {
	names := make([]string, len(c.Shards))
	for i, s := range c.Shards {
		names[i] = s.Name
	}
	return names
}

// MapSpec is the sharding section as a shard map spec.
func (c *Config) MapSpec() shardmap.Spec {
	return shardmap.Spec{
		DefaultShard:    c.Sharding.DefaultShard,
		Distributions:   c.Sharding.Distributions,
		ReferenceTables: c.Sharding.ReferenceTables,
	}
}

// ShardMap builds the shard map the file describes.
func (c *Config) ShardMap() (*shardmap.Map, error) {
	return shardmap.Build(c.MapSpec(), c.ShardNames(), 0, nil)
}

func (c *Config) validateSharding(v *validator) {
	if len(c.Shards) == 0 {
		return // validateShards has said so
	}
	_, err := c.ShardMap()
	if err == nil {
		return
	}
	for _, e := range unjoin(err) {
		var se *shardmap.SpecError
		if errors.As(e, &se) {
			v.add("sharding."+se.Path, "%s", se.Msg)
		} else {
			v.add("sharding", "%v", e)
		}
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
