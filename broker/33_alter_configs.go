package broker

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs v0-v2: replaces a topic's whole set of explicit configs,
// validated with Kafka's names and rules. Broker configs are static
// (flags), so altering them is refused.
func init() { register(kmsg.AlterConfigs, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	resp.SetVersion(req.Version)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		configs := map[string]string{}
		for _, cfg := range rr.Configs {
			if cfg.Value != nil {
				configs[cfg.Name] = *cfg.Value
			}
		}
		code, msg := c.b.applyTopicConfigs(ctx, int8(rr.ResourceType), rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) {
			return configs, nil
		})
		sr.ErrorCode, sr.ErrorMessage = code, msg
		resp.Resources = append(resp.Resources, sr)
	}
	return immediate(resp), nil
}

// applyTopicConfigs computes a topic's new config set with change and
// stores it, returning the Kafka error code and message for the resource.
func (b *Broker) applyTopicConfigs(ctx context.Context, resType int8, name string, validateOnly bool, change func(cur map[string]string) (map[string]string, error)) (int16, *string) {
	str := func(s string) *string { return &s }
	switch resType {
	case resourceTopic:
	case resourceBroker:
		return kerr.InvalidRequest.Code, str("broker configs are static in floe: set them with floe serve flags")
	default:
		return kerr.InvalidRequest.Code, str("unsupported resource type " + strconv.Itoa(int(resType)))
	}
	t := b.topics.get(name)
	if t == nil {
		return kerr.UnknownTopicOrPartition.Code, nil
	}
	t.mu.RLock()
	cur := make(map[string]string, len(t.configs))
	for k, v := range t.configs {
		cur[k] = v
	}
	t.mu.RUnlock()
	next, err := change(cur)
	if err != nil {
		return kerr.InvalidConfig.Code, str(err.Error())
	}
	for k, v := range next {
		if err := validateTopicConfig(k, v); err != nil {
			return kerr.InvalidConfig.Code, str(err.Error())
		}
	}
	if validateOnly {
		return 0, nil
	}
	if err := b.topics.setConfigs(ctx, t, next); err != nil {
		if errors.Is(err, errInvalidConfig) {
			return kerr.InvalidConfig.Code, str(err.Error())
		}
		return kerr.UnknownServerError.Code, str(err.Error())
	}
	return 0, nil
}
