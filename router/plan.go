package router

// Role is the kind of server a statement needs.
type Role uint8

// Roles. Only Primary is used until read/write splitting lands.
const (
	Primary Role = iota
	Replica
)

// Plan says where a statement runs.
type Plan struct {
	// Shard is the index of the shard in the map.
	Shard int
	Role  Role
}

// Route plans a statement. Until sharding and read/write splitting land,
// everything runs on the first shard's primary; the proxy already asks
// here so that those features change only this function.
func Route(Analysis) Plan { return Plan{Shard: 0, Role: Primary} }
