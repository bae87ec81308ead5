package schema

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// protobufSchema is a syntactically checked .proto file. There is no pure-Go
// .proto parser among floe's dependencies, so this is a small recursive-descent
// check of the proto2/proto3/editions grammar (declarations, fields, maps,
// oneofs, enums, services, options), not a full compiler: types are not
// resolved. Compatibility for Protobuf is NONE-like for now.
type protobufSchema struct {
	imports []string
	// tokens is the file without comments and layout; two files with the
	// same tokens are the same schema.
	tokens []string
}

func (s *protobufSchema) schemaType() string { return TypeProtobuf }

// canRead: Protobuf compatibility rules are not implemented yet; every
// Protobuf schema is accepted as compatible with earlier Protobuf versions.
func (s *protobufSchema) canRead(parsedSchema) []string { return nil }

type protoToken struct {
	text string
	kind byte // 'i' ident, 'n' number, 's' string, 'p' punctuation
	line int
}

var errProtoEOF = errors.New("unexpected end of file")

func tokenizeProto(src string) ([]protoToken, error) {
	var toks []protoToken
	line := 1
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated comment", line)
			}
			line += strings.Count(src[i:i+2+end], "\n")
			i += end + 4
		case isProtoLetter(c):
			j := i
			for j < len(src) && (isProtoLetter(src[j]) || isProtoDigit(src[j])) {
				j++
			}
			toks = append(toks, protoToken{text: src[i:j], kind: 'i', line: line})
			i = j
		case isProtoDigit(c) || (c == '.' && i+1 < len(src) && isProtoDigit(src[i+1])):
			j := i
			for j < len(src) && (isProtoLetter(src[j]) || isProtoDigit(src[j]) || src[j] == '.' ||
				((src[j] == '+' || src[j] == '-') && (src[j-1] == 'e' || src[j-1] == 'E') && !strings.HasPrefix(strings.ToLower(src[i:j]), "0x"))) {
				j++
			}
			toks = append(toks, protoToken{text: src[i:j], kind: 'n', line: line})
			i = j
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				if j < len(src) && src[j] == '\n' {
					return nil, fmt.Errorf("line %d: newline in string literal", line)
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("line %d: unterminated string literal", line)
			}
			toks = append(toks, protoToken{text: src[i : j+1], kind: 's', line: line})
			i = j + 1
		case strings.IndexByte("{}[]()<>;=,:.-+/", c) >= 0:
			toks = append(toks, protoToken{text: string(c), kind: 'p', line: line})
			i++
		default:
			return nil, fmt.Errorf("line %d: unexpected character %q", line, c)
		}
	}
	return toks, nil
}

func isProtoLetter(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isProtoDigit(c byte) bool  { return c >= '0' && c <= '9' }

type protoParser struct {
	toks    []protoToken
	pos     int
	imports []string
}

func parseProtobuf(src string) (*protobufSchema, error) {
	toks, err := tokenizeProto(src)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, errors.New("empty protobuf schema")
	}
	p := &protoParser{toks: toks}
	if err := p.file(); err != nil {
		return nil, err
	}
	texts := make([]string, len(toks))
	for i, t := range toks {
		texts[i] = t.text
	}
	return &protobufSchema{imports: p.imports, tokens: texts}, nil
}

func (p *protoParser) peek(ahead int) *protoToken {
	if p.pos+ahead < len(p.toks) {
		return &p.toks[p.pos+ahead]
	}
	return nil
}

func (p *protoParser) next() (*protoToken, error) {
	t := p.peek(0)
	if t == nil {
		return nil, errProtoEOF
	}
	p.pos++
	return t, nil
}

func (p *protoParser) errorf(t *protoToken, format string, args ...any) error {
	if t == nil {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errProtoEOF)
	}
	return fmt.Errorf("line %d: %s (at %q)", t.line, fmt.Sprintf(format, args...), t.text)
}

func (p *protoParser) is(ahead int, text string) bool {
	t := p.peek(ahead)
	return t != nil && t.text == text && t.kind != 's'
}

func (p *protoParser) expect(text string) error {
	t, err := p.next()
	if err != nil || t.text != text || t.kind == 's' {
		return p.errorf(t, "expected %q", text)
	}
	return nil
}

func (p *protoParser) ident() (string, error) {
	t, err := p.next()
	if err != nil || t.kind != 'i' {
		return "", p.errorf(t, "expected identifier")
	}
	return t.text, nil
}

// fullIdent parses ident { "." ident }, optionally with a leading dot.
func (p *protoParser) fullIdent() (string, error) {
	var b strings.Builder
	if p.is(0, ".") {
		p.pos++
		b.WriteString(".")
	}
	id, err := p.ident()
	if err != nil {
		return "", err
	}
	b.WriteString(id)
	for p.is(0, ".") {
		p.pos++
		id, err := p.ident()
		if err != nil {
			return "", err
		}
		b.WriteString("." + id)
	}
	return b.String(), nil
}

func (p *protoParser) stringLit() (string, error) {
	t, err := p.next()
	if err != nil || t.kind != 's' {
		return "", p.errorf(t, "expected string literal")
	}
	s := t.text
	if s[0] == '\'' {
		s = `"` + strings.ReplaceAll(s[1:len(s)-1], `"`, `\"`) + `"`
	}
	v, err := strconv.Unquote(s)
	if err != nil {
		// Protobuf escapes are a superset of Go's (\?, octal forms); keep the raw text.
		return t.text[1 : len(t.text)-1], nil
	}
	return v, nil
}

func (p *protoParser) intLit() (int64, error) {
	t, err := p.next()
	if err != nil || t.kind != 'n' {
		return 0, p.errorf(t, "expected integer")
	}
	v, err := strconv.ParseInt(t.text, 0, 64)
	if err != nil {
		return 0, p.errorf(t, "invalid integer")
	}
	return v, nil
}

func (p *protoParser) file() error {
	for p.peek(0) != nil {
		t := p.peek(0)
		switch {
		case p.is(0, ";"):
			p.pos++
		case p.is(0, "syntax") || p.is(0, "edition"):
			p.pos++
			if err := p.expect("="); err != nil {
				return err
			}
			v, err := p.stringLit()
			if err != nil {
				return err
			}
			if t.text == "syntax" && v != "proto2" && v != "proto3" {
				return p.errorf(t, "unknown syntax %q", v)
			}
			if err := p.expect(";"); err != nil {
				return err
			}
		case p.is(0, "package"):
			p.pos++
			if _, err := p.fullIdent(); err != nil {
				return err
			}
			if err := p.expect(";"); err != nil {
				return err
			}
		case p.is(0, "import"):
			p.pos++
			if p.is(0, "weak") || p.is(0, "public") {
				p.pos++
			}
			path, err := p.stringLit()
			if err != nil {
				return err
			}
			p.imports = append(p.imports, path)
			if err := p.expect(";"); err != nil {
				return err
			}
		case p.is(0, "option"):
			if err := p.option(); err != nil {
				return err
			}
		case p.is(0, "message"):
			if err := p.message(); err != nil {
				return err
			}
		case p.is(0, "enum"):
			if err := p.enum(); err != nil {
				return err
			}
		case p.is(0, "service"):
			if err := p.service(); err != nil {
				return err
			}
		case p.is(0, "extend"):
			if err := p.extend(); err != nil {
				return err
			}
		default:
			return p.errorf(t, "unexpected token at top level")
		}
	}
	return nil
}

// option parses `option name = constant ;`.
func (p *protoParser) option() error {
	p.pos++ // "option"
	if err := p.optionBody(); err != nil {
		return err
	}
	return p.expect(";")
}

// optionBody parses `name = constant` (also used inside [ ... ]).
func (p *protoParser) optionBody() error {
	if err := p.optionName(); err != nil {
		return err
	}
	if err := p.expect("="); err != nil {
		return err
	}
	return p.constant()
}

func (p *protoParser) optionName() error {
	for {
		if p.is(0, "(") {
			p.pos++
			if _, err := p.fullIdent(); err != nil {
				return err
			}
			if err := p.expect(")"); err != nil {
				return err
			}
		} else if _, err := p.ident(); err != nil {
			return err
		}
		if !p.is(0, ".") {
			return nil
		}
		p.pos++
	}
}

func (p *protoParser) constant() error {
	t := p.peek(0)
	switch {
	case t == nil:
		return p.errorf(nil, "expected constant")
	case t.kind == 's':
		for p.peek(0) != nil && p.peek(0).kind == 's' { // adjacent literals concatenate
			p.pos++
		}
		return nil
	case p.is(0, "-") || p.is(0, "+"):
		p.pos++
		n, err := p.next()
		if err != nil || (n.kind != 'n' && n.text != "inf" && n.text != "nan") {
			return p.errorf(n, "expected number")
		}
		return nil
	case t.kind == 'n':
		p.pos++
		return nil
	case t.kind == 'i' || p.is(0, "."):
		_, err := p.fullIdent()
		return err
	case p.is(0, "{"):
		return p.skipBalanced("{", "}")
	}
	return p.errorf(t, "expected constant")
}

// skipBalanced skips a bracketed text-format aggregate such as an option
// value `{ a: 1 b: [2, 3] }`, checking only that brackets balance.
func (p *protoParser) skipBalanced(open, closing string) error {
	start := p.peek(0)
	depth := 0
	for {
		t, err := p.next()
		if err != nil {
			return p.errorf(start, "unbalanced %q", open)
		}
		if t.kind == 's' {
			continue
		}
		switch t.text {
		case open:
			depth++
		case closing:
			depth--
			if depth == 0 {
				return nil
			}
		}
	}
}

// fieldOptions parses an optional `[ name = constant, ... ]`.
func (p *protoParser) fieldOptions() error {
	if !p.is(0, "[") {
		return nil
	}
	p.pos++
	for {
		if err := p.optionBody(); err != nil {
			return err
		}
		if p.is(0, ",") {
			p.pos++
			continue
		}
		return p.expect("]")
	}
}

func (p *protoParser) message() error {
	p.pos++ // "message"
	if _, err := p.ident(); err != nil {
		return err
	}
	return p.messageBody()
}

func (p *protoParser) messageBody() error {
	if err := p.expect("{"); err != nil {
		return err
	}
	numbers := map[int64]bool{}
	for {
		t := p.peek(0)
		if t == nil {
			return p.errorf(nil, "unterminated message")
		}
		var err error
		switch {
		case p.is(0, "}"):
			p.pos++
			return nil
		case p.is(0, ";"):
			p.pos++
		case p.is(0, "message") && p.peek(1) != nil && p.peek(1).kind == 'i' && p.is(2, "{"):
			err = p.message()
		case p.is(0, "enum") && p.peek(1) != nil && p.peek(1).kind == 'i' && p.is(2, "{"):
			err = p.enum()
		case p.is(0, "extend") && !p.is(1, "="):
			err = p.extend()
		case p.is(0, "option") && !p.is(1, "="):
			err = p.option()
		case p.is(0, "oneof") && p.peek(1) != nil && p.peek(1).kind == 'i' && p.is(2, "{"):
			err = p.oneof(numbers)
		case (p.is(0, "reserved") || p.is(0, "extensions")) && !p.is(1, "="):
			err = p.skipStatement()
		default:
			err = p.field(numbers, true)
		}
		if err != nil {
			return err
		}
	}
}

// skipStatement skips `reserved ...;` and `extensions ...;`, whose ranges
// and names need no checking for a syntax check.
func (p *protoParser) skipStatement() error {
	start := p.peek(0)
	for {
		t, err := p.next()
		if err != nil {
			return p.errorf(start, "unterminated statement")
		}
		if t.kind == 's' {
			continue
		}
		switch t.text {
		case ";":
			return nil
		case "[":
			p.pos--
			if err := p.skipBalanced("[", "]"); err != nil {
				return err
			}
		case "{", "}":
			return p.errorf(t, "unexpected brace")
		}
	}
}

// field parses a normal field, a map field or a proto2 group.
func (p *protoParser) field(numbers map[int64]bool, allowLabel bool) error {
	start := p.peek(0)
	if allowLabel && (p.is(0, "repeated") || p.is(0, "optional") || p.is(0, "required")) && !p.is(1, "=") && !p.is(1, ".") {
		p.pos++
	}
	if p.is(0, "map") && p.is(1, "<") {
		p.pos += 2
		if _, err := p.ident(); err != nil {
			return err
		}
		if err := p.expect(","); err != nil {
			return err
		}
		if _, err := p.fullIdent(); err != nil {
			return err
		}
		if err := p.expect(">"); err != nil {
			return err
		}
	} else if p.is(0, "group") && p.peek(1) != nil && p.peek(1).kind == 'i' && !p.is(1, "=") && p.is(2, "=") {
		p.pos += 2
		if err := p.expect("="); err != nil {
			return err
		}
		if err := p.fieldNumber(numbers, start); err != nil {
			return err
		}
		if err := p.fieldOptions(); err != nil {
			return err
		}
		return p.messageBody()
	} else if _, err := p.fullIdent(); err != nil {
		return p.errorf(start, "expected field declaration")
	}
	if _, err := p.ident(); err != nil {
		return err
	}
	if err := p.expect("="); err != nil {
		return err
	}
	if err := p.fieldNumber(numbers, start); err != nil {
		return err
	}
	if err := p.fieldOptions(); err != nil {
		return err
	}
	return p.expect(";")
}

func (p *protoParser) fieldNumber(numbers map[int64]bool, start *protoToken) error {
	n, err := p.intLit()
	if err != nil {
		return err
	}
	if n < 1 || n > 536870911 {
		return p.errorf(start, "field number %d out of range", n)
	}
	if numbers[n] {
		return p.errorf(start, "field number %d used twice", n)
	}
	numbers[n] = true
	return nil
}

func (p *protoParser) oneof(numbers map[int64]bool) error {
	p.pos += 2 // "oneof" name
	if err := p.expect("{"); err != nil {
		return err
	}
	for {
		switch {
		case p.peek(0) == nil:
			return p.errorf(nil, "unterminated oneof")
		case p.is(0, "}"):
			p.pos++
			return nil
		case p.is(0, ";"):
			p.pos++
		case p.is(0, "option") && !p.is(1, "="):
			if err := p.option(); err != nil {
				return err
			}
		default:
			if err := p.field(numbers, false); err != nil {
				return err
			}
		}
	}
}

func (p *protoParser) enum() error {
	p.pos++ // "enum"
	if _, err := p.ident(); err != nil {
		return err
	}
	if err := p.expect("{"); err != nil {
		return err
	}
	values := 0
	for {
		switch {
		case p.peek(0) == nil:
			return p.errorf(nil, "unterminated enum")
		case p.is(0, "}"):
			p.pos++
			if values == 0 {
				return p.errorf(p.peek(-1), "enum has no values")
			}
			return nil
		case p.is(0, ";"):
			p.pos++
		case p.is(0, "option") && !p.is(1, "="):
			if err := p.option(); err != nil {
				return err
			}
		case p.is(0, "reserved") && !p.is(1, "="):
			if err := p.skipStatement(); err != nil {
				return err
			}
		default:
			if _, err := p.ident(); err != nil {
				return err
			}
			if err := p.expect("="); err != nil {
				return err
			}
			if p.is(0, "-") {
				p.pos++
			}
			if _, err := p.intLit(); err != nil {
				return err
			}
			if err := p.fieldOptions(); err != nil {
				return err
			}
			if err := p.expect(";"); err != nil {
				return err
			}
			values++
		}
	}
}

func (p *protoParser) service() error {
	p.pos++ // "service"
	if _, err := p.ident(); err != nil {
		return err
	}
	if err := p.expect("{"); err != nil {
		return err
	}
	for {
		switch {
		case p.peek(0) == nil:
			return p.errorf(nil, "unterminated service")
		case p.is(0, "}"):
			p.pos++
			return nil
		case p.is(0, ";"):
			p.pos++
		case p.is(0, "option"):
			if err := p.option(); err != nil {
				return err
			}
		case p.is(0, "rpc"):
			if err := p.rpc(); err != nil {
				return err
			}
		default:
			return p.errorf(p.peek(0), "expected rpc or option in service")
		}
	}
}

func (p *protoParser) rpc() error {
	p.pos++ // "rpc"
	if _, err := p.ident(); err != nil {
		return err
	}
	for i, word := range []string{"", "returns"} {
		if i == 1 {
			if err := p.expect(word); err != nil {
				return err
			}
		}
		if err := p.expect("("); err != nil {
			return err
		}
		if p.is(0, "stream") && !p.is(1, ")") && !p.is(1, ".") {
			p.pos++
		}
		if _, err := p.fullIdent(); err != nil {
			return err
		}
		if err := p.expect(")"); err != nil {
			return err
		}
	}
	if p.is(0, ";") {
		p.pos++
		return nil
	}
	if err := p.expect("{"); err != nil {
		return err
	}
	for {
		switch {
		case p.peek(0) == nil:
			return p.errorf(nil, "unterminated rpc")
		case p.is(0, "}"):
			p.pos++
			return nil
		case p.is(0, ";"):
			p.pos++
		case p.is(0, "option"):
			if err := p.option(); err != nil {
				return err
			}
		default:
			return p.errorf(p.peek(0), "expected option in rpc body")
		}
	}
}

func (p *protoParser) extend() error {
	p.pos++ // "extend"
	if _, err := p.fullIdent(); err != nil {
		return err
	}
	if err := p.expect("{"); err != nil {
		return err
	}
	numbers := map[int64]bool{}
	for {
		switch {
		case p.peek(0) == nil:
			return p.errorf(nil, "unterminated extend")
		case p.is(0, "}"):
			p.pos++
			return nil
		case p.is(0, ";"):
			p.pos++
		default:
			if err := p.field(numbers, true); err != nil {
				return err
			}
		}
	}
}
