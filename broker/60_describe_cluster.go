package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// DescribeCluster v0-v2: the cluster id, this broker as controller and the
// live brokers (just this one in single-broker mode).
func init() { register(kmsg.DescribeCluster, 0, 2, handleDescribeCluster) }

func handleDescribeCluster(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.SetVersion(req.Version)
	b := c.b
	resp.ClusterID = b.clusterID
	resp.ControllerID = b.cfg.NodeID
	resp.EndpointType = req.EndpointType
	resp.ClusterAuthorizedOperations = -2147483648
	br := kmsg.NewDescribeClusterResponseBroker()
	br.NodeID, br.Host, br.Port = b.cfg.NodeID, b.advHost, b.advPort
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{br}
	return immediate(resp), nil
}
