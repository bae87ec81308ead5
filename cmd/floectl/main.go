// Command floectl is floe's operator CLI: topics, benchmarks, and (as the
// cluster features land) tables, groups and reassignment. It talks to floe
// over the Kafka protocol and the admin HTTP API, like any other client.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "topic", "topics":
		err = topicCmd(ctx, os.Args[2:])
	case "bench":
		err = benchCmd(ctx, os.Args[2:])
	case "table", "tables":
		err = tableCmd(ctx, os.Args[2:])
	case "cluster", "clusters":
		if len(os.Args) > 2 && os.Args[2] == "balance" {
			err = balanceCmd(ctx, os.Args[3:])
			break
		}
		err = clusterCmd(ctx, os.Args[2:])
	case "partition", "partitions":
		err = partitionCmd(ctx, os.Args[2:])
	case "help", "-h", "--help":
		usage()
		return
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floectl:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: floectl <command> [flags]

commands:
  topic list|create|delete|describe   manage topics
  bench produce                        measure produce throughput and latency
  table status [name] | retry name     table topics: state, lag, commits (admin API)
  table compact name | expire name     table maintenance now: compaction; snapshot expiry and orphan cleanup
  partition move --topic T --partition P --to N
                                       move a partition's leadership (reassignment), timed
  cluster balance status               members, controller, load per broker, recent moves
  cluster create|list|describe|env|scale|delete
                                       provision clusters: local processes, Kubernetes or compose
`)
}

// commonFlags are shared by every command that talks Kafka.
type commonFlags struct {
	brokers string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.brokers, "brokers", envOr("FLOE_BROKERS", "127.0.0.1:9092"), "comma-separated bootstrap brokers")
}

func (c *commonFlags) seeds() []string { return strings.Split(c.brokers, ",") }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// parseArgs parses flags that may come before, between or after positional
// arguments (`topic create orders --partitions 8`), returning the positionals.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
