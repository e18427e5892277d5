package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shardgate/shardgate/cmd/shardgate/config"
	"github.com/shardgate/shardgate/proxy/tlsconf"
	"github.com/shardgate/shardgate/shardmap"
	"github.com/shardgate/shardgate/shardmap/catalog"
)

// checkConfig validates a config file and prints the effective
// configuration with its secrets hidden.
func checkConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: shardgate check-config FILE")
		return 2
	}
	cfg, err := config.Load(args[0], nil)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n%v\n", args[0], err)
		return 1
	}
	out, err := yaml.Marshal(cfg.Redacted())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "# %s is valid; effective configuration (secrets hidden):\n%s", args[0], out)
	return 0
}

// genCert writes a self-signed certificate for trying TLS locally.
func genCert(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: shardgate gen-cert CERT_FILE KEY_FILE [HOST...]")
		return 2
	}
	hosts := args[2:]
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	if err := tlsconf.WriteSelfSigned(args[0], args[1], hosts); err != nil {
		fmt.Fprintln(stderr, "shardgate:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s and %s (self-signed, for development only)\n", args[0], args[1])
	return 0
}

// shardmapCmd prints (show), checks (validate) or writes to the catalog
// (apply) the shard map of a config file.
func shardmapCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || !slices.Contains([]string{"show", "validate", "apply"}, args[0]) {
		fmt.Fprintln(stderr, "usage: shardgate shardmap show|validate|apply FILE")
		return 2
	}
	cfg, err := config.Load(args[1], nil)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n%v\n", args[1], err)
		return 1
	}
	m, err := cfg.ShardMap()
	if err != nil { // Load validated it; kept for safety
		fmt.Fprintf(stderr, "%s: invalid shard map:\n%v\n", args[1], err)
		return 1
	}
	switch {
	case args[0] == "validate":
		fmt.Fprintf(stdout, "%s: the shard map is valid: %d shards, %d distributions\n", args[1], len(m.Shards()), len(m.Distributions()))
		return 0
	case args[0] == "apply":
		return applyMap(cfg, args[1], stdout, stderr)
	case cfg.Catalog.DSN != "":
		return showCatalogMap(cfg, m, stdout, stderr)
	}
	fmt.Fprint(stdout, m.Describe())
	return 0
}

// cliTimeout bounds a command's work with the catalog.
const cliTimeout = 30 * time.Second

// showCatalogMap prints the catalog's map, which is the one proxies serve,
// and says whether the file's differs.
func showCatalogMap(cfg *config.Config, fileMap *shardmap.Map, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	store, err := catalog.Connect(ctx, cfg.Catalog.DSN, catalog.Options{Shards: cfg.ShardNames()})
	if err != nil {
		fmt.Fprintln(stderr, "shardgate:", err)
		return 1
	}
	defer store.Close()
	snap, err := store.Snapshot(ctx)
	if errors.Is(err, catalog.ErrNoMap) {
		fmt.Fprintf(stdout, "# the catalog holds no map yet; shardgate serve will seed it with the file's:\n%s", fileMap.Describe())
		return 0
	}
	var m *shardmap.Map
	if err == nil {
		m, err = store.Build(snap)
	}
	if err != nil {
		fmt.Fprintln(stderr, "shardgate:", err)
		return 1
	}
	note := "the same as the file's"
	if !sameSpec(snap.Spec, cfg.MapSpec()) {
		note = "the file's sharding section differs; `shardgate shardmap apply` makes it the catalog's"
	}
	fmt.Fprintf(stdout, "# from the catalog (%s)\n%s", note, m.Describe())
	return 0
}

// applyMap writes the file's sharding section to the catalog as its next
// version, which every proxy then follows.
func applyMap(cfg *config.Config, path string, stdout, stderr io.Writer) int {
	if cfg.Catalog.DSN == "" {
		fmt.Fprintf(stderr, "%s: shardmap apply needs catalog.dsn (in the file or SHARDGATE_CATALOG_DSN)\n", path)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	store, err := catalog.Open(ctx, cfg.Catalog.DSN, catalog.Options{Shards: cfg.ShardNames()})
	if err != nil {
		fmt.Fprintln(stderr, "shardgate:", err)
		return 1
	}
	defer store.Close()
	spec := cfg.MapSpec()
	if snap, err := store.Snapshot(ctx); err == nil && sameSpec(snap.Spec, spec) && slices.Equal(snap.Shards, cfg.ShardNames()) {
		fmt.Fprintf(stdout, "the catalog already holds this map (version %d); nothing written\n", snap.Version)
		return 0
	}
	v, err := store.SetSpec(ctx, spec, cfg.ShardNames())
	if err != nil {
		fmt.Fprintln(stderr, "shardgate:", err)
		return 1
	}
	fmt.Fprintf(stdout, "applied the shard map of %s as version %d\n", path, v)
	return 0
}

// sameSpec compares specs as the catalog stores them, in JSON.
func sameSpec(a, b shardmap.Spec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
