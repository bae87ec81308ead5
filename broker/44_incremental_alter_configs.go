package broker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// IncrementalAlterConfigs v0-v1: SET, DELETE, APPEND and SUBTRACT on a
// topic's configs (APPEND/SUBTRACT only for list configs such as
// cleanup.policy), applied atomically per resource.
func init() { register(kmsg.IncrementalAlterConfigs, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	resp.SetVersion(req.Version)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		ops := rr.Configs
		code, msg := c.b.applyTopicConfigs(ctx, int8(rr.ResourceType), rr.ResourceName, req.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
			for _, op := range ops {
				op.Name = canonicalConfigName(op.Name)
				d, known := topicConfigDefs[op.Name]
				if !known {
					return nil, fmt.Errorf("unknown topic config name: %s", op.Name)
				}
				val := ""
				if op.Value != nil {
					val = *op.Value
				}
				switch op.Op {
				case 0: // SET
					cur[op.Name] = val
				case 1: // DELETE
					delete(cur, op.Name)
				case 2, 3: // APPEND, SUBTRACT
					if d.typ != cfgList {
						return nil, fmt.Errorf("config %s is not a list; APPEND and SUBTRACT need a list config", op.Name)
					}
					existing, ok := cur[op.Name]
					if !ok {
						existing = d.def
					}
					items := splitList(existing)
					for _, v := range splitList(val) {
						if op.Op == 2 && !contains(items, v) {
							items = append(items, v)
						}
						if op.Op == 3 {
							items = remove(items, v)
						}
					}
					cur[op.Name] = strings.Join(items, ",")
				default:
					return nil, fmt.Errorf("unknown config operation %d", op.Op)
				}
			}
			return cur, nil
		})
		sr.ErrorCode, sr.ErrorMessage = code, msg
		resp.Resources = append(resp.Resources, sr)
	}
	return immediate(resp), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func remove(list []string, s string) []string {
	out := list[:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}
