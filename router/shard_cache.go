package router

// planCache maps query texts to their plan and the schema version the
// plan was made for. A text keeps one entry: a plan made for another
// version is a miss, and the new plan replaces it, so a map change costs
// one plan per text and leaves no stale entries behind.
type planCache struct {
	c *cache[versionedPlan]
}

type versionedPlan struct {
	version uint64
	plan    *Plan
}

func newPlanCache(size int) *planCache { return &planCache{c: newCache[versionedPlan](size)} }

// get looks key up for version. It neither allocates nor keeps key.
func (pc *planCache) get(key string, version uint64) *Plan {
	v, ok := pc.c.get(key)
	if !ok || v.version != version {
		return nil
	}
	return v.plan
}

// put stores a copy of key with its plan for version.
func (pc *planCache) put(key string, version uint64, p *Plan) {
	pc.c.put(key, versionedPlan{version: version, plan: p})
}

// len counts the entries.
func (pc *planCache) len() int { return pc.c.len() }
