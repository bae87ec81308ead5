package compat

import "testing"

// TestFranzGo produces the dataset with franz-go in every codec and reads
// it back with a direct-partition franz-go consumer.
func TestFranzGo(t *testing.T) {
	ds := theDataset()
	c := startCluster(t)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := "franzgo-" + codec
			c.createTopic(t, topic)
			produceFranz(t, c.ctx(t, produceTimeout), c.addr(), topic, codec, ds)
			c.checkOffsets(t, topic, ds)
			c.checkFranzConsume(t, topic, codec, ds)
		})
	}
}
