package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handlerFunc handles one decoded request. It runs on the connection's read
// loop, so it must do its order-sensitive work (such as appending produced
// batches) before returning, and leave waiting to the returned future.
// Returning an error closes the connection.
type handlerFunc func(c *conn, req kmsg.Request) (respFuture, error)

type handler struct {
	min, max int16
	fn       handlerFunc
}

// handlers is filled by the init functions of the per-key files; ApiVersions
// is derived from it, so a key is advertised only if it is served.
var handlers = map[int16]handler{}

func register(key kmsg.Key, min, max int16, fn handlerFunc) {
	handlers[int16(key)] = handler{min: min, max: max, fn: fn}
}

// apiVersionKeys lists every served key and its version range.
func (b *Broker) apiVersionKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(handlers))
	for k, h := range handlers {
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: h.min, MaxVersion: h.max})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}

// immediate wraps a response computed synchronously.
func immediate(resp kmsg.Response) respFuture { return func() kmsg.Response { return resp } }
