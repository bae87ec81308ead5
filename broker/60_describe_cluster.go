package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// DescribeCluster v0-v2: the cluster id, the controller and the live brokers.
func init() { register(kmsg.DescribeCluster, 0, 2, handleDescribeCluster) }

func handleDescribeCluster(c *conn, kreq kmsg.Request) (respFuture, error) {
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.SetVersion(req.Version)
	b := c.b
	resp.ClusterID = b.clusterID
	resp.ControllerID = b.view.controllerID()
	resp.EndpointType = req.EndpointType
	resp.ClusterAuthorizedOperations = -2147483648
	for _, mb := range b.brokerList() {
		br := kmsg.NewDescribeClusterResponseBroker()
		br.NodeID, br.Host, br.Port, br.Rack = mb.NodeID, mb.Host, mb.Port, mb.Rack
		resp.Brokers = append(resp.Brokers, br)
	}
	return immediate(resp), nil
}
