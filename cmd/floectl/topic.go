package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func topicCmd(ctx context.Context, args []string) error {
	if len(args) < 1 {
		return errors.New("topic: want list, create, delete or describe")
	}
	var (
		common     commonFlags
		partitions int
		configs    stringList
	)
	fs := flag.NewFlagSet("floectl topic "+args[0], flag.ContinueOnError)
	common.register(fs)
	fs.IntVar(&partitions, "partitions", 1, "number of partitions (create)")
	fs.Var(&configs, "config", "topic config name=value (create; repeatable)")
	names, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(common.seeds()...))
	if err == nil && args[0] != "list" && len(names) == 0 {
		return fmt.Errorf("topic %s: name a topic", args[0])
	}
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	switch args[0] {
	case "list":
		tds, err := adm.ListTopics(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TOPIC\tPARTITIONS\tID")
		for _, td := range tds.Sorted() {
			fmt.Fprintf(w, "%s\t%d\t%s\n", td.Topic, len(td.Partitions), td.ID)
		}
		return w.Flush()
	case "create":
		cfgs := map[string]*string{}
		for _, kv := range configs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("config %q: want name=value", kv)
			}
			cfgs[k] = &v
		}
		for _, name := range names {
			resp, err := adm.CreateTopic(ctx, int32(partitions), -1, cfgs, name)
			if err != nil {
				return err
			}
			if resp.Err != nil {
				return fmt.Errorf("%s: %w (%s)", name, resp.Err, resp.ErrMessage)
			}
			fmt.Printf("created %s (%d partitions)\n", name, resp.NumPartitions)
		}
		return nil
	case "delete":
		resps, err := adm.DeleteTopics(ctx, names...)
		if err != nil {
			return err
		}
		for _, r := range resps.Sorted() {
			if r.Err != nil {
				return fmt.Errorf("%s: %w", r.Topic, r.Err)
			}
			fmt.Println("deleted", r.Topic)
		}
		return nil
	case "describe":
		ends, err := adm.ListEndOffsets(ctx, names...)
		if err != nil {
			return err
		}
		starts, err := adm.ListStartOffsets(ctx, names...)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TOPIC\tPARTITION\tLOG-START\tHIGH-WATERMARK\tLEADER-EPOCH")
		ends.Each(func(o kadm.ListedOffset) {
			s, _ := starts.Lookup(o.Topic, o.Partition)
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\n", o.Topic, o.Partition, s.Offset, o.Offset, o.LeaderEpoch)
		})
		return w.Flush()
	}
	return fmt.Errorf("topic: unknown subcommand %q", args[0])
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
