// Package config is the one place a daemon's settings are merged: built-in defaults, then a
// TOML file, then OMNISYNC_* environment variables, then command-line flags, each
// overriding the one before (NATS's server/opts.go is the model). It turns the result into
// the daemons' Options (chain.Options, router.Options, node.Options, validator.Options),
// which each daemon's New validates again, and records where every value came from for
// `omnisync config print`.
//
// It holds no secrets: a daemon names its wallet (a key file in the wallet directory) and
// the cli loads the key, so nothing here can print a private key.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// ErrInvalid is wrapped by every error about the file or a setting's value.
var ErrInvalid = errors.New("invalid configuration")

// The roles a file configures, one table each.
const (
	RoleChain     = "chain"
	RoleRouter    = "router"
	RoleNode      = "node"
	RoleValidator = "validator"
)

// Roles lists the roles in the order config print shows them.
var Roles = []string{RoleChain, RoleRouter, RoleNode, RoleValidator}

// EnvConfig names the config file when --config is not given.
const EnvConfig = "OMNISYNC_CONFIG"

// Source says where a setting's value came from.
type Source string

// Sources, weakest first.
const (
	FromDefault Source = "default"
	FromFile    Source = "file"
	FromEnv     Source = "env"
	FromFlag    Source = "flag"
)

// Config is every role's settings: a file may hold all four tables, and one machine may
// run several roles from it.
type Config struct {
	Chain     Chain     `toml:"chain"`
	Router    Router    `toml:"router"`
	Node      Node      `toml:"node"`
	Validator Validator `toml:"validator"`

	// File is the TOML file the settings were read from; "" if none.
	File    string
	sources map[string]Source // "router.nodes_addr" -> where its value came from
}

// Default is the configuration with nothing set.
func Default() *Config {
	c := &Config{Chain: defaultChain(), Router: defaultRouter(), Node: defaultNode(), Validator: defaultValidator(),
		sources: map[string]Source{}}
	for _, role := range Roles {
		for _, b := range c.bindings(role) {
			c.sources[b.key] = FromDefault
		}
	}
	return c
}

// Inputs are where settings come from besides the defaults.
type Inputs struct {
	// File is the TOML file to read; "" reads none.
	File string
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Role and Flags: the flags of one role's command, registered by BindFlags. Only flags
	// the user set override; their defaults are the built-in ones.
	Role  string
	Flags *pflag.FlagSet
}

// Load merges defaults ← file ← environment ← flags. Errors wrap ErrInvalid and name the
// setting (its key and line in the file, its variable or its flag).
func Load(in Inputs) (*Config, error) {
	c := Default()
	if in.File != "" {
		data, err := os.ReadFile(in.File)
		if err != nil {
			return nil, fmt.Errorf("%w: config file: %v", ErrInvalid, err)
		}
		if err := c.decode(in.File, data); err != nil {
			return nil, err
		}
		c.File = in.File
	}
	lookup := in.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	for _, role := range Roles {
		for _, b := range c.bindings(role) {
			v, ok := lookup(b.env)
			if !ok || v == "" {
				continue
			}
			if err := b.set(v); err != nil {
				return nil, fmt.Errorf("%w: %s=%q (%s): %v", ErrInvalid, b.env, v, b.key, err)
			}
			c.sources[b.key] = FromEnv
		}
	}
	if in.Flags != nil {
		for _, b := range c.bindings(in.Role) {
			f := in.Flags.Lookup(b.flag)
			if f == nil || !f.Changed {
				continue
			}
			fv, ok := f.Value.(*flagValue)
			if !ok {
				return nil, fmt.Errorf("config: flag --%s was not registered by BindFlags", b.flag)
			}
			raw := fv.raw[len(fv.raw)-1] // a repeated flag: the last wins, or a list takes them all
			if b.isList() {
				raw = strings.Join(fv.raw, ",")
			}
			if err := b.set(raw); err != nil {
				return nil, fmt.Errorf("%w: --%s %q: %v", ErrInvalid, b.flag, raw, err)
			}
			c.sources[b.key] = FromFlag
		}
	}
	return c, nil
}

// BindFlags registers role's settings as flags on fs, each with its built-in default in
// the help. Load applies the ones the user set, after the file and the environment.
func BindFlags(fs *pflag.FlagSet, role string) {
	for _, b := range Default().bindings(role) {
		fs.VarP(&flagValue{typ: b.typeName(), def: b.text(), list: b.isList()}, b.flag, b.short, b.help+" (env "+b.env+")")
	}
}

// Validate checks role's merged settings; errors name the setting and where it came from.
func (c *Config) Validate(role string) error {
	var errs []error
	switch role {
	case RoleChain:
		errs = c.Chain.validate()
	case RoleRouter:
		errs = c.Router.validate()
	case RoleNode:
		errs = c.Node.validate()
	case RoleValidator:
		errs = c.Validator.validate()
	default:
		return fmt.Errorf("%w: unknown role %q: want one of %s", ErrInvalid, role, strings.Join(Roles, ", "))
	}
	for i, err := range errs {
		var se *settingError
		if errors.As(err, &se) {
			errs[i] = fmt.Errorf("%w: %s (%s)", ErrInvalid, err, c.origin(role, se.key))
		}
	}
	return errors.Join(errs...)
}

// Require fails unless role's key was set somewhere (it has no usable default), saying
// every way to set it.
func (c *Config) Require(role, key string) error {
	for _, b := range c.bindings(role) {
		if b.key != role+"."+key {
			continue
		}
		if b.text() != "" {
			return nil
		}
		return fmt.Errorf("%w: %s is not set: pass --%s, set %s in the [%s] table of --config, or set %s",
			ErrInvalid, b.key, b.flag, key, role, b.env)
	}
	return fmt.Errorf("config: %s has no setting %q", role, key)
}

// SourceOf says where role's setting key (as in the file, "min_price") came from.
func (c *Config) SourceOf(role, key string) Source { return c.sources[role+"."+key] }

// origin says where a setting's value came from, for error messages.
func (c *Config) origin(role, key string) string {
	full := role + "." + key
	for _, b := range c.bindings(role) {
		if b.key != full {
			continue
		}
		switch c.sources[full] {
		case FromFile:
			return "from " + c.File
		case FromEnv:
			return "from " + b.env
		case FromFlag:
			return "from --" + b.flag
		}
	}
	return "the default"
}

// Setting is one merged value, as config print shows it.
type Setting struct {
	Key    string `json:"key"`   // role.key, as in the file
	Value  any    `json:"value"` // as the file writes it: durations and amounts as strings
	Text   string `json:"-"`
	Source Source `json:"source"`
	Env    string `json:"env"`
	Flag   string `json:"flag"`
	Help   string `json:"-"`
}

// Settings lists role's merged settings in the order the file format documents them.
func (c *Config) Settings(role string) []Setting {
	var out []Setting
	for _, b := range c.bindings(role) {
		out = append(out, Setting{Key: b.key, Value: b.jsonValue(), Text: b.text(), Source: c.sources[b.key],
			Env: b.env, Flag: "--" + b.flag, Help: b.help})
	}
	return out
}

// binding ties one struct field to its key in the file, its variable and its flag.
type binding struct {
	key   string // role.key
	env   string
	flag  string
	short string // one-letter flag, if any
	help  string
	v     reflect.Value // the field, settable
}

// bindings reflects over role's struct: each field's `toml` tag is its key; its variable
// is OMNISYNC_<ROLE>_<KEY> and its flag --<key with dashes>, unless `env` or `flag` tags say
// otherwise (settings every role shares keep the names the other commands use); `short`
// gives a one-letter flag.
func (c *Config) bindings(role string) []binding {
	var s reflect.Value
	switch role {
	case RoleChain:
		s = reflect.ValueOf(&c.Chain).Elem()
	case RoleRouter:
		s = reflect.ValueOf(&c.Router).Elem()
	case RoleNode:
		s = reflect.ValueOf(&c.Node).Elem()
	case RoleValidator:
		s = reflect.ValueOf(&c.Validator).Elem()
	default:
		return nil
	}
	t := s.Type()
	out := make([]binding, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("toml")
		b := binding{
			key:   role + "." + key,
			env:   f.Tag.Get("env"),
			flag:  f.Tag.Get("flag"),
			short: f.Tag.Get("short"),
			help:  f.Tag.Get("help"),
			v:     s.Field(i),
		}
		if b.env == "" {
			b.env = "OMNISYNC_" + strings.ToUpper(role+"_"+key)
		}
		if b.flag == "" {
			b.flag = strings.ReplaceAll(key, "_", "-")
		}
		out = append(out, b)
	}
	return out
}

func (c *Config) binding(key string) (binding, bool) {
	role, _, _ := strings.Cut(key, ".")
	for _, b := range c.bindings(role) {
		if b.key == key {
			return b, true
		}
	}
	return binding{}, false
}

var (
	durationType = reflect.TypeFor[Duration]()
	amountType   = reflect.TypeFor[Amount]()
)

// set parses text (from the environment or a flag) into the field.
func (b binding) set(text string) error {
	switch {
	case b.v.Type() == durationType:
		var d Duration
		if err := d.UnmarshalText([]byte(text)); err != nil {
			return err
		}
		b.v.Set(reflect.ValueOf(d))
		return nil
	case b.v.Type() == amountType:
		var a Amount
		if err := a.UnmarshalText([]byte(text)); err != nil {
			return err
		}
		b.v.Set(reflect.ValueOf(a))
		return nil
	}
	switch b.v.Kind() {
	case reflect.String:
		b.v.SetString(text)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil || b.v.OverflowInt(n) {
			return fmt.Errorf("want a whole number, e.g. 3")
		}
		b.v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil {
			return fmt.Errorf("want a number, e.g. 82.6")
		}
		b.v.SetFloat(f)
	case reflect.Slice: // []string: comma-separated
		var list []string
		for _, s := range strings.Split(text, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		b.v.Set(reflect.ValueOf(list))
	default:
		panic(fmt.Sprintf("config: %s has unsupported type %s", b.key, b.v.Type()))
	}
	return nil
}

// fromFile stores a value decoded from TOML, checking its type.
func (b binding) fromFile(v any) error {
	switch b.v.Type() {
	case durationType:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a duration as a string, e.g. \"250ms\" or \"10s\", got %s", tomlType(v))
		}
		return b.set(s)
	case amountType:
		switch x := v.(type) {
		case string:
			return b.set(x)
		case int64:
			return b.set(strconv.FormatInt(x, 10))
		case float64: // the shortest text that reads back as x: what the file said, for any amount with ≤6 decimals
			return b.set(strconv.FormatFloat(x, 'f', -1, 64))
		}
		return fmt.Errorf("want an amount of OMNI, e.g. \"0.04\", got %s", tomlType(v))
	}
	switch b.v.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string, got %s", tomlType(v))
		}
		b.v.SetString(s)
	case reflect.Int, reflect.Int64:
		n, ok := v.(int64)
		if !ok || b.v.OverflowInt(n) {
			return fmt.Errorf("want a whole number, e.g. 3, got %s", tomlType(v))
		}
		b.v.SetInt(n)
	case reflect.Float64:
		switch x := v.(type) {
		case float64:
			b.v.SetFloat(x)
		case int64:
			b.v.SetFloat(float64(x))
		default:
			return fmt.Errorf("want a number, e.g. 82.6, got %s", tomlType(v))
		}
	case reflect.Slice:
		items, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want an array of strings, e.g. [\"router.example.org\"], got %s", tomlType(v))
		}
		list := make([]string, 0, len(items))
		for _, it := range items {
			s, ok := it.(string)
			if !ok {
				return fmt.Errorf("want an array of strings, got an element that is %s", tomlType(it))
			}
			list = append(list, s)
		}
		b.v.Set(reflect.ValueOf(list))
	default:
		panic(fmt.Sprintf("config: %s has unsupported type %s", b.key, b.v.Type()))
	}
	return nil
}

// text renders the value as a flag or variable would take it.
func (b binding) text() string {
	switch x := b.v.Interface().(type) {
	case []string:
		return strings.Join(x, ",")
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(b.v.Interface())
}

// jsonValue is the value as the file writes it.
func (b binding) jsonValue() any {
	switch x := b.v.Interface().(type) {
	case Duration, Amount:
		return b.text()
	case []string:
		if x == nil {
			return []string{}
		}
		return x
	default:
		return x
	}
}

func (b binding) isList() bool { return b.v.Kind() == reflect.Slice }

// typeName is what --help shows after the flag.
func (b binding) typeName() string {
	switch b.v.Type() {
	case durationType:
		return "duration"
	case amountType:
		return "OMNI"
	}
	switch b.v.Kind() {
	case reflect.Int, reflect.Int64:
		return "int"
	case reflect.Float64:
		return "number"
	case reflect.Slice:
		return "strings"
	}
	if strings.HasSuffix(b.key, "_addr") {
		return "host:port"
	}
	return "string"
}

// flagValue keeps what the user typed; Load parses it after the file and the environment.
type flagValue struct {
	typ, def string
	list     bool
	raw      []string
}

func (f *flagValue) String() string {
	if f.raw == nil {
		return f.def
	}
	return strings.Join(f.raw, ",")
}

func (f *flagValue) Set(s string) error {
	if f.list {
		f.raw = append(f.raw, s)
	} else {
		f.raw = []string{s}
	}
	return nil
}

func (f *flagValue) Type() string { return f.typ }

// settingError is a validation failure of one setting; Validate adds where it came from.
type settingError struct {
	key string // without the role
	msg string
}

func (e *settingError) Error() string { return e.msg }

// check collects validation failures for one role.
type check struct {
	role string
	errs []error
}

func (c *check) fail(key, format string, args ...any) {
	c.errs = append(c.errs, &settingError{key: key, msg: c.role + "." + key + ": " + fmt.Sprintf(format, args...)})
}

func (c *check) positive(key string, d Duration) {
	if d.Duration <= 0 {
		c.fail(key, "%s must be positive, e.g. \"1s\"", d)
	}
}

func (c *check) nonEmpty(key, v, example string) {
	if strings.TrimSpace(v) == "" {
		c.fail(key, "must not be empty, e.g. %s", example)
	}
}

func (c *check) oneOf(key, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		c.fail(key, "%q: want %s", v, strings.Join(allowed, " or "))
	}
}
