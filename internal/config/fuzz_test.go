package config

import (
	"errors"
	"reflect"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
)

// FuzzDecode feeds arbitrary documents to the file decoder. It must never panic, must
// refuse with ErrInvalid, and what it accepts must survive a round trip: the settings,
// written back as TOML the way config print writes them, decode to the same settings.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		"",
		"[router]\nrest_addr = \"0.0.0.0:7070\"\nheartbeat_ttl = \"3s\"\ntls_hosts = [\"a\", \"b\"]\n",
		"[node]\nmin_price = 0.04\nstake = \"500\"\ngpus = 2\ntflops = 82.6\nlatitude = -1e1\n",
		"node.gpus = 1\nvalidator = { rounds = 3 }\n",
		"[chain]\nhome = '/var/lib/x'\n[chain]\n",
		"[router]\nnope = 1\n[[node]]\n",
		"a.b.c = 1\n\"quoted key\" = 2\n",
		"[node]\ngpus = 0x10\nvram_mib = 1_024\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		if err := c.decode("fuzz.toml", data); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		doc := map[string]map[string]any{}
		for _, role := range Roles {
			doc[role] = map[string]any{}
			for _, s := range c.Settings(role) {
				doc[role][s.Key[len(role)+1:]] = s.Value
			}
		}
		out, err := toml.Marshal(doc)
		if err != nil {
			t.Fatalf("marshal settings: %v", err)
		}
		again := Default()
		if err := again.decode("again.toml", out); err != nil {
			t.Fatalf("settings written back do not decode: %v\n%s", err, out)
		}
		for _, role := range Roles {
			a, b := c.Settings(role), again.Settings(role)
			for i := range a {
				if !reflect.DeepEqual(a[i].Value, b[i].Value) && a[i].Text != b[i].Text {
					t.Fatalf("%s: %v, then %v after a round trip\n%s", a[i].Key, a[i].Value, b[i].Value, out)
				}
			}
		}
	})
}
