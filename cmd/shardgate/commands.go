package main

import (
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"

	"github.com/shardgate/shardgate/cmd/shardgate/config"
	"github.com/shardgate/shardgate/proxy/tlsconf"
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

// shardmapCmd prints (show) or checks (validate) the shard map of a config
// file.
func shardmapCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || (args[0] != "show" && args[0] != "validate") {
		fmt.Fprintln(stderr, "usage: shardgate shardmap show|validate FILE")
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
	if args[0] == "validate" {
		fmt.Fprintf(stdout, "%s: the shard map is valid: %d shards, %d distributions\n", args[1], len(m.Shards()), len(m.Distributions()))
		return 0
	}
	fmt.Fprint(stdout, m.Describe())
	return 0
}
