//go:build tools

// Package deps pins the modules floe's packages are built on, so that
// parallel work on separate packages agrees on one version of each.
package deps

import (
	_ "github.com/apache/arrow-go/v18/arrow"
	_ "github.com/apache/iceberg-go"
	_ "github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/hamba/avro/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/twmb/franz-go/pkg/kadm"
	_ "github.com/twmb/franz-go/pkg/kgo"
	_ "github.com/twmb/franz-go/pkg/kmsg"
	_ "go.etcd.io/etcd/client/v3"
	_ "go.etcd.io/etcd/server/v3/embed"
	_ "modernc.org/sqlite"
)
