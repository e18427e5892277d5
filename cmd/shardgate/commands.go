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
