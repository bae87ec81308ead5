package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/loadgen"
)

func benchCmd(ctx context.Context, args []string) error {
	if len(args) < 1 || args[0] != "produce" {
		return errors.New("bench: want produce")
	}
	var (
		common     commonFlags
		cfg        loadgen.ProduceConfig
		partitions int
	)
	fs := flag.NewFlagSet("floectl bench produce", flag.ContinueOnError)
	common.register(fs)
	fs.StringVar(&cfg.Topic, "topic", "floectl-bench", "topic to produce to (created if missing)")
	fs.IntVar(&partitions, "partitions", 16, "partitions when creating the topic")
	fs.IntVar(&cfg.Records, "records", 0, "records to produce (0: run for -duration)")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long to produce when -records is 0")
	fs.IntVar(&cfg.RecordBytes, "record-bytes", 1024, "value size")
	fs.StringVar(&cfg.Compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	fs.DurationVar(&cfg.Linger, "linger", 0, "producer linger")
	fs.IntVar(&cfg.Rate, "rate", 0, "records per second (0: as fast as the cluster takes them)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg.Seeds = common.seeds()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Seeds...))
	if err != nil {
		return err
	}
	_, err = kadm.NewClient(cl).CreateTopic(ctx, int32(partitions), -1, nil, cfg.Topic)
	cl.Close()
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return err
	}
	res, err := loadgen.Produce(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Println(res)
	if res.FirstErrMsg != "" {
		fmt.Println("first error:", res.FirstErrMsg)
	}
	return nil
}
