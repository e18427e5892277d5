package shardmap

// Spec is a shard map as written by people: in the config file's sharding
// section, and in the catalog. Build checks it and turns it into a Map.
// The tags give the key names used in both places.
type Spec struct {
	// DefaultShard holds every table that is in no distribution and not a
	// reference table. Empty means the first shard.
	DefaultShard string `mapstructure:"default_shard" yaml:"default_shard,omitempty" json:"default_shard,omitempty"`
	// Distributions are the groups of co-located sharded tables.
	Distributions []DistributionSpec `mapstructure:"distributions" yaml:"distributions,omitempty" json:"distributions,omitempty"`
	// ReferenceTables are copied on every shard, as "table" or
	// "schema.table".
	ReferenceTables []string `mapstructure:"reference_tables" yaml:"reference_tables,omitempty" json:"reference_tables,omitempty"`
	// ReadFloors are, per shard name, a WAL position ("16/B374D848") the
	// shard's replicas must have replayed before they serve reads: an
	// online move sets the target's position at its switch, so that rows
	// it brought are not missed by a read on a replica still behind.
	ReadFloors map[string]string `mapstructure:"read_floors" yaml:"read_floors,omitempty" json:"read_floors,omitempty"`
	// MoveTargets, in a frozen map, name the shards the move's switch is
	// about to send the frozen writes to: proxies open connections to
	// them meanwhile, so that the held writes do not all connect at once.
	MoveTargets []string `mapstructure:"move_targets" yaml:"move_targets,omitempty" json:"move_targets,omitempty"`
}

// DistributionSpec is one distribution.
type DistributionSpec struct {
	Name   string `mapstructure:"name" yaml:"name" json:"name"`
	Method Method `mapstructure:"method" yaml:"method" json:"method"`
	// KeyType is the SQL type of the key columns: smallint, integer,
	// bigint, text, varchar, uuid (hash and directory also), date,
	// timestamp, timestamptz (range only).
	KeyType string      `mapstructure:"key_type" yaml:"key_type" json:"key_type"`
	Tables  []TableSpec `mapstructure:"tables" yaml:"tables" json:"tables"`
	// Shards, for hash (and directory placement by hash), splits the hash
	// space evenly among these shards, in order. Ranges says it exactly
	// instead; a distribution has one or the other.
	Shards []string `mapstructure:"shards" yaml:"shards,omitempty" json:"shards,omitempty"`
	// Ranges are [lo, hi) ranges: of the int64 hash space for hash, of the
	// key's values for range. An empty lo or hi is open.
	Ranges []RangeSpec `mapstructure:"ranges" yaml:"ranges,omitempty" json:"ranges,omitempty"`
	// Place, for directory, says where a key not in the directory yet
	// goes: "hash" (by Shards or Ranges, as a hash distribution would) or
	// the name of a shard.
	Place string `mapstructure:"place" yaml:"place,omitempty" json:"place,omitempty"`
	// FrozenKeys, for directory, are keys being moved to another shard:
	// writes to them are held like writes to a frozen range.
	FrozenKeys []string `mapstructure:"frozen_keys" yaml:"frozen_keys,omitempty" json:"frozen_keys,omitempty"`
}

// TableSpec is a sharded table and its key column.
type TableSpec struct {
	// Name is "table" or "schema.table"; unqualified names match the
	// table in any schema.
	Name string `mapstructure:"name" yaml:"name" json:"name"`
	Key  string `mapstructure:"key" yaml:"key" json:"key"`
}

// RangeSpec is one range and its owner.
type RangeSpec struct {
	Lo    string `mapstructure:"lo" yaml:"lo,omitempty" json:"lo,omitempty"`
	Hi    string `mapstructure:"hi" yaml:"hi,omitempty" json:"hi,omitempty"`
	Shard string `mapstructure:"shard" yaml:"shard" json:"shard"`
	// Frozen marks a range being moved to another shard (shardgate
	// rebalance, during its cutover): proxies hold writes to it until a
	// new map says where it lives. Reads go on.
	Frozen bool `mapstructure:"frozen" yaml:"frozen,omitempty" json:"frozen,omitempty"`
}

// Method is how a distribution places keys.
type Method string

// Methods.
const (
	MethodHash      Method = "hash"
	MethodRange     Method = "range"
	MethodDirectory Method = "directory"
)
