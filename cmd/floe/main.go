// Command floe is the floe server: a Kafka-compatible, diskless broker with
// table topics, plus the embedded Iceberg REST catalog and schema registry.
// This package only wires flags to the services; the logic lives in the
// broker, catalog, schema and tabletopic packages.
package main

import (
	"fmt"
	"os"
)

var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		if err := serve(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "floe serve:", err)
			os.Exit(1)
		}
	case "etcd":
		if err := runEtcd(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "floe etcd:", err)
			os.Exit(1)
		}
	case "version", "--version", "-version":
		fmt.Println("floe", version)
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "floe: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: floe <command> [flags]

commands:
  serve     run floe (all roles embedded by default); floe serve -h lists flags
  etcd      run one member of a standalone etcd cluster for floe's metadata; floe etcd -h lists flags
  version   print the version
`)
}
