package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "check-config":
		return checkConfig(args, stdout, stderr)
	case "gen-cert":
		return genCert(args, stdout, stderr)
	case "shardmap":
		return shardmapCmd(args, stdout, stderr)
	case "rebalance":
		return rebalanceCmd(args, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "shardgate %s\n", version)
		return 0
	case "help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "shardgate: unknown command %q\n\n", cmd)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  shardgate [serve] --config FILE [--listen.addr HOST:PORT] [--pool.mode MODE] ...
  shardgate check-config FILE
  shardgate shardmap show|validate|apply FILE
  shardgate rebalance plan|move|status|verify|resume|abort -c FILE ...
  shardgate gen-cert CERT_FILE KEY_FILE [HOST...]
  shardgate version

Every config key can also be set with an environment variable
SHARDGATE_<KEY> (dots become underscores, e.g. SHARDGATE_POOL_MODE=session)
or a flag --<key> (e.g. --pool.mode=session). Run 'shardgate serve --help'
for the flags.
`)
}
