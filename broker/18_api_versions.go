package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// ApiVersions v0-v4: the served keys and their version ranges, derived from
// the handler table. A request at a version we do not know is answered at
// v0 with UNSUPPORTED_VERSION and our ranges (KIP-511), in conn.go.
func init() { register(kmsg.ApiVersions, 0, 4, handleApiVersions) }

const errUnsupportedVersionCode = 35

func handleApiVersions(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.SetVersion(req.Version)
	resp.ApiKeys = c.b.apiVersionKeys()
	if req.Version >= 3 {
		c.clientID = req.ClientSoftwareName + "/" + req.ClientSoftwareVersion
	}
	return immediate(resp), nil
}
