package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// partitionCmd: `floectl partition move --topic T --partition P --to N`
// moves a partition's leadership with Kafka's AlterPartitionReassignments
// (what kafka-reassign-partitions does) and waits until the new leader
// acknowledges a produce, printing how long the move took.
func partitionCmd(ctx context.Context, args []string) error {
	if len(args) < 1 || args[0] != "move" {
		return errors.New("partition: want move")
	}
	var (
		common    commonFlags
		topic     string
		partition int
		to        int
		noProbe   bool
	)
	fs := flag.NewFlagSet("floectl partition move", flag.ContinueOnError)
	common.register(fs)
	fs.StringVar(&topic, "topic", "", "topic")
	fs.IntVar(&partition, "partition", 0, "partition")
	fs.IntVar(&to, "to", -1, "node id of the new leader")
	fs.BoolVar(&noProbe, "no-probe", false, "do not produce a probe record to confirm the new leader serves")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if topic == "" || to < 0 {
		return errors.New("partition move: --topic and --to are required")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(common.seeds()...), kgo.MetadataMinAge(10*time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	from := int32(-1)
	if md, err := adm.Metadata(ctx, topic); err == nil {
		if pd, ok := md.Topics[topic].Partitions[int32(partition)]; ok {
			from = pd.Leader
		}
	}
	start := time.Now()
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, int32(partition), []int32{int32(to)})
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return err
	}
	for _, r := range res.Sorted() {
		if r.Err != nil {
			return fmt.Errorf("%s/%d: %v %s", r.Topic, r.Partition, r.Err, r.ErrMessage)
		}
	}
	fmt.Fprintf(os.Stderr, "moving %s/%d from broker %d to %d ", topic, partition, from, to)
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			if pd := md.Topics[topic].Partitions[int32(partition)]; pd.Err == nil && pd.Leader == int32(to) {
				break
			}
		}
		if time.Since(start) > 30*time.Second {
			return fmt.Errorf("%s/%d: broker %d does not lead it after 30s", topic, partition, to)
		}
		fmt.Fprint(os.Stderr, ".")
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr)
	if !noProbe {
		r := &kgo.Record{Topic: topic, Partition: int32(partition), Key: []byte("floectl-partition-move"), Value: []byte(start.UTC().Format(time.RFC3339Nano))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			return fmt.Errorf("probe produce on the new leader: %w", err)
		}
	}
	fmt.Printf("moved %s/%d: broker %d -> %d in %v\n", topic, partition, from, to, time.Since(start).Round(time.Millisecond))
	return nil
}

// clusterStatusOut mirrors the admin API's /v1/cluster.
type clusterStatusOut struct {
	ClusterID string `json:"cluster_id"`
	Brokers   []struct {
		NodeID   int32  `json:"node_id"`
		Addr     string `json:"addr"`
		Rack     string `json:"rack"`
		Draining bool   `json:"draining"`
	} `json:"brokers"`
	Balance struct {
		Controller int32   `json:"controller"`
		Band       float64 `json:"band"`
		InBand     bool    `json:"in_band"`
		Brokers    []struct {
			NodeID      int32   `json:"node_id"`
			Partitions  int     `json:"partitions"`
			BytesPerSec float64 `json:"bytes_per_sec"`
			Draining    bool    `json:"draining"`
		} `json:"brokers"`
		Moves []struct {
			Topic     string    `json:"topic"`
			Partition int32     `json:"partition"`
			From      int32     `json:"from"`
			To        int32     `json:"to"`
			Rate      float64   `json:"bytes_per_sec"`
			At        time.Time `json:"at"`
		} `json:"recent_moves"`
		UpdatedAt time.Time `json:"updated_at"`
		Pending   []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Leader    int32  `json:"leader"`
		} `json:"pending"`
	} `json:"balance"`
}

// balanceCmd: `floectl cluster balance status` prints the members, the
// controller, each broker's measured load and the balancer's recent moves.
func balanceCmd(ctx context.Context, args []string) error {
	if len(args) < 1 || args[0] != "status" {
		return errors.New("cluster balance: want status")
	}
	var (
		admin  string
		asJSON bool
	)
	fs := flag.NewFlagSet("floectl cluster balance status", flag.ContinueOnError)
	fs.StringVar(&admin, "admin", envOr("FLOE_ADMIN", "127.0.0.1:9644"), "floe admin address of any broker (host:port or URL)")
	fs.BoolVar(&asJSON, "json", false, "print the admin API's JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	base := admin
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	body, err := adminCall(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/v1/cluster")
	if err != nil {
		return err
	}
	if asJSON {
		_, err := os.Stdout.Write(body)
		return err
	}
	var st clusterStatusOut
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("decoding /v1/cluster: %w", err)
	}
	fmt.Printf("cluster %s: %d brokers, controller %d\n", st.ClusterID, len(st.Brokers), st.Balance.Controller)
	state := "in band"
	if !st.Balance.InBand {
		state = "OUT OF BAND (moving partitions)"
	}
	updated := "never"
	if !st.Balance.UpdatedAt.IsZero() {
		updated = ago(st.Balance.UpdatedAt)
	}
	fmt.Printf("balance: %s (band %.0f%% of the mean), last round %s\n", state, 100*st.Balance.Band, updated)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDR\tPARTITIONS\tBYTES/S\tSTATE")
	loads := map[int32]int{}
	for i, b := range st.Balance.Brokers {
		loads[b.NodeID] = i
	}
	for _, b := range st.Brokers {
		parts, rate := "-", "-"
		if i, ok := loads[b.NodeID]; ok {
			parts = fmt.Sprint(st.Balance.Brokers[i].Partitions)
			rate = humanBytes(int64(st.Balance.Brokers[i].BytesPerSec))
		}
		stateS := "live"
		if b.Draining {
			stateS = "draining"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", b.NodeID, b.Addr, parts, rate, stateS)
	}
	tw.Flush()
	if len(st.Balance.Pending) > 0 {
		fmt.Printf("%d partitions without a serving leader\n", len(st.Balance.Pending))
	}
	for _, m := range st.Balance.Moves {
		fmt.Printf("moved %s/%d %d -> %d (%s/s) %s\n", m.Topic, m.Partition, m.From, m.To, humanBytes(int64(m.Rate)), ago(m.At))
	}
	return nil
}
