package proxy

import (
	"maps"
	"sort"
	"strings"

	"github.com/shardgate/shardgate/router"
)

// settings are a client's session settings as the proxy tracks them in
// pooled modes: every server that serves the client is first brought to
// these values.
type settings struct {
	// startup holds the values from the startup packet; RESET returns to
	// them, as it does on a server.
	startup map[string]string
	values  map[string]string
	// pending are SET/RESET effects of the current transaction; they become
	// values when it commits and are dropped when it rolls back.
	pending []router.SetEffect
	// failed marks the current transaction as rolled back or failed.
	failed bool
	// reported are values the server reported (ParameterStatus) for
	// settings the client changed without SET, e.g. with set_config().
	reported map[string]string
}

// followReported are the settings a server reports when they change and a
// client may set; read-only ones (server_version, is_superuser, ...) must
// not be replayed.
var followReported = map[string]bool{
	"application_name": true, "client_encoding": true, "datestyle": true,
	"intervalstyle": true, "timezone": true, "standard_conforming_strings": true,
	"default_transaction_read_only": true, "search_path": true,
}

// noteReported records a ParameterStatus the client's own request caused.
func (c *settings) noteReported(name, value string) {
	name = strings.ToLower(name)
	if !followReported[name] {
		return
	}
	if c.reported == nil {
		c.reported = map[string]string{}
	}
	c.reported[name] = value
}

func newSettings(startup map[string]string) settings {
	return settings{startup: startup, values: maps.Clone(startup)}
}

// note records a statement's completed effect on settings.
func (c *settings) note(st *router.Statement, tag string) {
	switch {
	case st.Command == router.CmdSet && st.Set != nil && !st.Set.Local && (tag == "SET" || tag == "RESET"):
		c.pending = append(c.pending, *st.Set)
	case st.Command == router.CmdDiscardAll && tag == "DISCARD ALL":
		c.pending = append(c.pending, router.SetEffect{All: true, Reset: true})
	}
}

// endTransaction applies or drops the pending effects once the server is
// idle again, and mirrors them on the server's own record.
func (c *settings) endTransaction(server map[string]string) {
	if !c.failed {
		// Reported values first: an explicit SET or RESET of the same
		// setting says better what the client meant.
		for k, v := range c.reported {
			if cur, ok := c.values[k]; !ok || cur != v {
				c.values[k], server[k] = v, v
			}
		}
		for _, e := range c.pending {
			c.apply(e, server)
		}
	}
	c.pending = c.pending[:0]
	clear(c.reported)
	c.failed = false
}

func (c *settings) apply(e router.SetEffect, server map[string]string) {
	switch {
	case e.All:
		c.values = maps.Clone(c.startup)
		clear(server)
	case e.Reset:
		if v, ok := c.startup[e.Name]; ok {
			c.values[e.Name] = v
		} else {
			delete(c.values, e.Name)
		}
		delete(server, e.Name)
	default:
		c.values[e.Name] = e.Value
		server[e.Name] = e.Value
	}
}

// replaySQL returns the statements that bring a server from have to want,
// or "" when they already agree. It records the result in have.
func replaySQL(want, have map[string]string) string {
	var resets, sets []string
	for k := range have {
		if _, ok := want[k]; !ok {
			resets = append(resets, k)
		}
	}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			sets = append(sets, k)
		}
	}
	if len(resets) == 0 && len(sets) == 0 {
		return ""
	}
	// Stable order: the same state always produces the same text.
	sort.Strings(resets)
	sort.Strings(sets)
	var b strings.Builder
	for _, k := range resets {
		b.WriteString("RESET ")
		b.WriteString(quoteSettingName(k))
		b.WriteString(";")
		delete(have, k)
	}
	if len(sets) > 0 {
		b.WriteString("SELECT ")
		for i, k := range sets {
			if i > 0 {
				b.WriteString(", ")
			}
			// set_config parses the value as the setting's own input
			// syntax, which SET's quoting rules would not.
			b.WriteString("pg_catalog.set_config(")
			b.WriteString(quoteLiteral(k))
			b.WriteString(", ")
			b.WriteString(quoteLiteral(want[k]))
			b.WriteString(", false)")
			have[k] = want[k]
		}
	}
	return b.String()
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// quoteSettingName quotes each dotted part, for custom settings such as
// "myapp.tenant".
func quoteSettingName(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}
