package config

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// decode applies a TOML document over c. The document is parsed twice: go-toml checks the
// syntax and gives the values their types, and a walk of its syntax tree finds the line of
// every key, so that an unknown key or a bad value is reported with its line, all of them
// at once, in the order of the file.
func (c *Config) decode(path string, data []byte) error {
	var doc map[string]any
	dec := toml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ := de.Position()
			return fmt.Errorf("%w: %s line %d: %s", ErrInvalid, path, line, strings.TrimPrefix(de.Error(), "toml: "))
		}
		// go-toml reports a key defined twice without its position; find it.
		if key, line := firstDuplicate(data); line > 0 {
			return fmt.Errorf("%w: %s line %d: %s is defined twice", ErrInvalid, path, line, key)
		}
		return fmt.Errorf("%w: %s: %v", ErrInvalid, path, strings.TrimPrefix(err.Error(), "toml: "))
	}
	lines := keyLines(data)
	type lineErr struct {
		line int
		err  string
	}
	var errs []lineErr
	fail := func(key string, format string, args ...any) {
		errs = append(errs, lineErr{lines[key], fmt.Sprintf("%s line %d: %s", path, lines[key], fmt.Sprintf(format, args...))})
	}
	for _, role := range sortedKeys(doc) {
		table, ok := doc[role].(map[string]any)
		if !slices.Contains(Roles, role) {
			fail(role, "unknown key %q: the file has one table per role: %s", role, tables())
			continue
		}
		if !ok {
			fail(role, "%s must be a table ([%s]), got %s", role, role, tomlType(doc[role]))
			continue
		}
		for _, key := range sortedKeys(table) {
			full := role + "." + key
			b, known := c.binding(full)
			if !known {
				fail(full, "unknown key %s (the [%s] table takes %s)", full, role, c.keysOf(role))
				continue
			}
			if err := b.fromFile(table[key]); err != nil {
				fail(full, "%s: %v", full, err)
				continue
			}
			c.sources[full] = FromFile
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].line < errs[j].line })
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.err
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(msgs, "\n"))
}

// keyLines maps every key of a document that go-toml accepted, as role.key, to the line
// that defines it: a table header, a key = value line, or a key inside an inline table.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			it := e.Key()
			table = keyPath(&p, nil, &it, lines)
		case unstable.KeyValue:
			walkKeyValue(&p, table, e, lines)
		}
	}
	return lines
}

// walkKeyValue records a key = value line's keys and returns the key it defines, with
// every key an inline table value defines after it.
func walkKeyValue(p *unstable.Parser, prefix []string, kv *unstable.Node, lines map[string]int) []string {
	it := kv.Key()
	full := keyPath(p, prefix, &it, lines)
	defined := []string{strings.Join(full, ".")}
	if v := kv.Value(); v.Kind == unstable.InlineTable {
		children := v.Children()
		for children.Next() {
			if n := children.Node(); n.Kind == unstable.KeyValue {
				defined = append(defined, walkKeyValue(p, full, n, lines)...)
			}
		}
	}
	return defined
}

// firstDuplicate finds the first key = value line or table header that defines a key a
// line above it already defined, and its line.
func firstDuplicate(data []byte) (string, int) {
	var p unstable.Parser
	p.Reset(data)
	defined := map[string]bool{}
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		var keys []string
		switch e.Kind {
		case unstable.Table:
			it := e.Key()
			table = keyPath(&p, nil, &it, map[string]int{})
			keys = []string{"[" + strings.Join(table, ".") + "]"}
		case unstable.ArrayTable:
			it := e.Key()
			table = keyPath(&p, nil, &it, map[string]int{})
		case unstable.KeyValue:
			keys = walkKeyValue(&p, table, e, map[string]int{})
		}
		for _, k := range keys {
			if defined[k] {
				it := e.Key()
				it.Next()
				return k, p.Shape(it.Node().Raw).Start.Line
			}
			defined[k] = true
		}
	}
	return "", 0
}

// keyPath appends a dotted key's parts to prefix, recording the line of each level.
func keyPath(p *unstable.Parser, prefix []string, it *unstable.Iterator, lines map[string]int) []string {
	path := slices.Clone(prefix)
	for it.Next() {
		n := it.Node()
		path = append(path, string(n.Data))
		key := strings.Join(path, ".")
		if _, seen := lines[key]; !seen {
			lines[key] = p.Shape(n.Raw).Start.Line
		}
	}
	return path
}

func (c *Config) keysOf(role string) string {
	var keys []string
	for _, b := range c.bindings(role) {
		keys = append(keys, strings.TrimPrefix(b.key, role+"."))
	}
	return strings.Join(keys, ", ")
}

func tables() string {
	var out []string
	for _, r := range Roles {
		out = append(out, "["+r+"]")
	}
	return strings.Join(out, ", ")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// tomlType names a decoded value's TOML type for error messages.
func tomlType(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return fmt.Sprintf("the boolean %t", x)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}
