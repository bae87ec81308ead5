package metastore

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newZapLogger returns a zap logger that forwards entries at minLevel and above
// to the slog handler, so etcd (server and client both log through zap) ends
// up in floe's structured log. etcd is chatty at info level, hence the floor.
//
// While quiet is set (the Store is closing), and for a few warnings etcd
// always prints in floe's configuration, entries go out at debug level:
// teardown errors such as "http: Server closed" are expected then.
func newZapLogger(h slog.Handler, minLevel zapcore.Level, quiet *atomic.Bool) *zap.Logger {
	return zap.New(&slogCore{h: h, min: minLevel, quiet: quiet})
}

// benignEtcdWarnings are logged by etcd on every start with floe's settings.
var benignEtcdWarnings = map[string]bool{
	"Running http and grpc server on single port. This is not recommended for production.": true,
	"exceeded recommended request limit":                                                   true, // we raise max-request-bytes on purpose
	"simple token is not cryptographically signed":                                         true, // auth is off
}

// slogCore is a zapcore.Core writing to a slog.Handler.
type slogCore struct {
	h     slog.Handler
	min   zapcore.Level
	quiet *atomic.Bool
}

var _ zapcore.Core = (*slogCore)(nil)

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return l >= c.min && c.h.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	if len(fields) == 0 {
		return c
	}
	return &slogCore{h: c.h.WithAttrs(fieldsToAttrs(fields)), min: c.min, quiet: c.quiet}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	level := slogLevel(e.Level)
	if (c.quiet != nil && c.quiet.Load()) || benignEtcdWarnings[e.Message] {
		level = slog.LevelDebug
		if !c.h.Enabled(context.Background(), level) {
			return nil
		}
	}
	r := slog.NewRecord(e.Time, level, e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(fieldsToAttrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// fieldsToAttrs renders zap fields through zap's own map encoder, which knows
// every field type (errors, durations, arrays, objects), sorted for stable output.
func fieldsToAttrs(fields []zapcore.Field) []slog.Attr {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, enc.Fields[k]))
	}
	return attrs
}
