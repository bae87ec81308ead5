package metastore

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestZapToSlog(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	var quiet atomic.Bool
	zl := newZapLogger(h, zapcore.WarnLevel, &quiet).Named("raft").With(zap.String("member", "floe"))

	zl.Info("chatty", zap.Int("n", 1))
	if buf.Len() != 0 {
		t.Fatalf("info below the floor was logged: %s", buf.String())
	}
	zl.Warn("slow apply", zap.Duration("took", 2*time.Second), zap.Error(errors.New("disk")), zap.Strings("peers", []string{"a", "b"}))
	zl.Error("failed")
	zl.Warn("simple token is not cryptographically signed")
	quiet.Store(true)
	zl.Error("http: Server closed")
	out := buf.String()
	for _, want := range []string{
		"level=WARN", `msg="slow apply"`, "logger=raft", "member=floe", "took=2s", "error=disk", "peers=\"[a b]\"",
		"level=ERROR", "msg=failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Contains(line, "simple token") || strings.Contains(line, "Server closed") {
			if !strings.Contains(line, "level=DEBUG") {
				t.Errorf("expected a debug-level line, got %s", line)
			}
		}
	}
	if !strings.Contains(out, "Server closed") {
		t.Errorf("quiet entries must still reach a debug handler:\n%s", out)
	}
}
