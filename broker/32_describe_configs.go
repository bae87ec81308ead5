package broker

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs v0-v4 for topics (every known config, with its source:
// DYNAMIC_TOPIC_CONFIG when set, DEFAULT_CONFIG otherwise) and brokers (the
// broker settings clients and tools ask about, read-only).
func init() { register(kmsg.DescribeConfigs, 0, 4, handleDescribeConfigs) }

const (
	resourceTopic  = 2
	resourceBroker = 4

	sourceDynamicTopic = 1
	sourceStaticBroker = 4
	sourceDefault      = 5
)

// configTypeCode maps a config's type to DescribeConfigs v3's ConfigType.
func configTypeCode(t configType) int8 {
	switch t {
	case cfgBool:
		return 1
	case cfgString:
		return 2
	case cfgInt:
		return 3
	case cfgLong:
		return 5
	case cfgDouble:
		return 6
	case cfgList:
		return 7
	}
	return 0
}

func handleDescribeConfigs(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	resp.SetVersion(req.Version)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		switch rr.ResourceType {
		case resourceTopic:
			t := c.b.topics.get(rr.ResourceName)
			if t == nil {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				sr.Configs = describeTopic(t, rr.ConfigNames)
			}
		case resourceBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(c.b.cfg.NodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				msg := "unknown broker id " + rr.ResourceName
				sr.ErrorMessage = &msg
			} else {
				sr.Configs = c.b.describeBroker(rr.ConfigNames)
			}
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := "unsupported resource type " + strconv.Itoa(int(rr.ResourceType))
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return immediate(resp), nil
}

func wanted(names []string, name string) bool { return names == nil || contains(names, name) }

func describeTopic(t *topic, names []string) []kmsg.DescribeConfigsResponseResourceConfig {
	t.mu.RLock()
	set := t.configs
	t.mu.RUnlock()
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, name := range topicConfigNames() {
		if !wanted(names, name) {
			continue
		}
		d := topicConfigDefs[name]
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name = name
		rc.ConfigType = kmsg.ConfigType(configTypeCode(d.typ))
		if v, ok := set[name]; ok {
			rc.Value = &v
			rc.Source = sourceDynamicTopic
		} else {
			v := d.def
			rc.Value = &v
			rc.Source = sourceDefault
			rc.IsDefault = true
		}
		out = append(out, rc)
	}
	return out
}

func (b *Broker) describeBroker(names []string) []kmsg.DescribeConfigsResponseResourceConfig {
	vals := [][2]string{
		{"broker.id", strconv.Itoa(int(b.cfg.NodeID))},
		{"node.id", strconv.Itoa(int(b.cfg.NodeID))},
		{"auto.create.topics.enable", strconv.FormatBool(b.cfg.AutoCreateTopics)},
		{"num.partitions", strconv.Itoa(int(b.cfg.DefaultPartitions))},
		{"default.replication.factor", "1"},
		{"message.max.bytes", topicConfigDefs["max.message.bytes"].def},
		{"log.retention.ms", topicConfigDefs["retention.ms"].def},
		{"socket.request.max.bytes", strconv.Itoa(int(b.cfg.MaxRequestBytes))},
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, kv := range vals {
		if !wanted(names, kv[0]) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		v := kv[1]
		rc.Name, rc.Value, rc.ReadOnly, rc.Source = kv[0], &v, true, sourceStaticBroker
		out = append(out, rc)
	}
	return out
}
