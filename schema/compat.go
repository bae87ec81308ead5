package schema

import (
	"fmt"
	"strings"
)

// Compatibility levels, as Confluent names them.
const (
	CompatNone               = "NONE"
	CompatBackward           = "BACKWARD"
	CompatBackwardTransitive = "BACKWARD_TRANSITIVE"
	CompatForward            = "FORWARD"
	CompatForwardTransitive  = "FORWARD_TRANSITIVE"
	CompatFull               = "FULL"
	CompatFullTransitive     = "FULL_TRANSITIVE"
)

// Modes, as Confluent names them.
const (
	ModeReadWrite = "READWRITE"
	ModeReadOnly  = "READONLY"
	ModeImport    = "IMPORT"
)

const invalidCompatibilityMessage = "Invalid compatibility level. Valid values are none, backward, forward, full, " +
	"backward_transitive, forward_transitive, and full_transitive"

// parseCompatibility normalizes a level name (Confluent accepts any case).
func parseCompatibility(s string) (string, error) {
	switch level := strings.ToUpper(strings.TrimSpace(s)); level {
	case CompatNone, CompatBackward, CompatBackwardTransitive, CompatForward,
		CompatForwardTransitive, CompatFull, CompatFullTransitive:
		return level, nil
	}
	return "", newError(ErrInvalidCompatibility, "%s", invalidCompatibilityMessage)
}

// parseMode normalizes a mode name. Confluent also has FORWARD and
// READONLY_OVERRIDE; floe has no leader forwarding, so they are rejected.
func parseMode(s string) (string, error) {
	switch mode := strings.ToUpper(strings.TrimSpace(s)); mode {
	case ModeReadWrite, ModeReadOnly, ModeImport:
		return mode, nil
	}
	return "", newError(ErrInvalidMode, "Invalid mode. Valid values are READWRITE, READONLY and IMPORT.")
}

// parsedSchema is a validated schema ready for compatibility checks.
type parsedSchema interface {
	schemaType() string
	// canRead reports why this schema, as a reader, cannot decode data
	// written with writer (same type); nil means it can. Messages carry
	// %[reader] and %[writer] placeholders for the roles ("new"/"old"), where
	// Confluent's carry two %s verbs.
	canRead(writer parsedSchema) []string
}

// previousSchema is one earlier version of a subject, oldest first in lists.
type previousSchema struct {
	version int
	text    string
	parsed  parsedSchema
}

// checkCompatibility applies a level to a new schema and the subject's live
// versions (oldest first) and returns Confluent-style messages; none means
// compatible. Transitive levels check every version newest first and stop at
// the first failure, as Confluent's validator does.
func checkCompatibility(level string, next parsedSchema, previous []previousSchema) []string {
	if level == CompatNone || len(previous) == 0 {
		return nil
	}
	candidates := previous[len(previous)-1:]
	if strings.HasSuffix(level, "_TRANSITIVE") {
		candidates = previous
	}
	for i := len(candidates) - 1; i >= 0; i-- {
		old := candidates[i]
		var msgs []string
		if old.parsed.schemaType() != next.schemaType() {
			msgs = []string{"Incompatible because of different schema type"}
		} else {
			switch strings.TrimSuffix(level, "_TRANSITIVE") {
			case CompatBackward:
				msgs = formatMessages(next.canRead(old.parsed), old, "new", "old", true)
			case CompatForward:
				msgs = formatMessages(old.parsed.canRead(next), old, "old", "new", true)
			case CompatFull:
				msgs = formatMessages(old.parsed.canRead(next), old, "old", "new", false)
				msgs = append(msgs, formatMessages(next.canRead(old.parsed), old, "new", "old", true)...)
			}
		}
		if len(msgs) > 0 {
			return append(msgs, fmt.Sprintf("{validateFields: 'false', compatibility: '%s'}", level))
		}
	}
	return nil
}

const maxSchemaLengthInMessages = 2000

func formatMessages(msgs []string, old previousSchema, reader, writer string, appendSchema bool) []string {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]string, 0, len(msgs)+2)
	for _, m := range msgs {
		out = append(out, strings.ReplaceAll(strings.ReplaceAll(m, "%[reader]", reader), "%[writer]", writer))
	}
	if appendSchema {
		if old.version > 0 {
			out = append(out, fmt.Sprintf("{oldSchemaVersion: %d}", old.version))
		}
		if len(old.text) <= maxSchemaLengthInMessages {
			out = append(out, fmt.Sprintf("{oldSchema: '%s'}", old.text))
		} else {
			out = append(out, fmt.Sprintf("{oldSchema: <truncated> '%s...'}", old.text[:maxSchemaLengthInMessages]))
		}
	}
	return out
}
