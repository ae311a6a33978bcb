package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/omnisync/omnisync/"

// pkg is one parsed package: its non-test files.
type pkg struct {
	dir   string // relative to the repo root, e.g. internal/ledger
	files map[string]*ast.File
}

func loadPackages(t *testing.T) []pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var out []pkg
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(out, func(p pkg) bool { return p.dir == rel })
		if i < 0 {
			out = append(out, pkg{dir: rel, files: map[string]*ast.File{}})
			i = len(out) - 1
		}
		out[i].files[filepath.Base(path)] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func imports(f *ast.File) []string {
	var out []string
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		out = append(out, p)
	}
	return out
}

// The deterministic cores: no I/O, no wall clock, no goroutines, no unseeded randomness.
var cores = map[string][]string{
	// dir: allowed imports beyond the pure standard-library list below
	// curve25519-voi's ed25519: signature verification under the standard library's rules
	// (ledger.verifyEd25519), a pure function whose verdicts TestVerifyMatchesStdlib holds
	// equal to crypto/ed25519's, 30% faster.
	"internal/ledger":    {module + "internal/keys", "time", "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"},
	"internal/scheduler": {"math", "sync"}, // sync: Index.Place's sync.Pool of scratch space, which no answer depends on
	"internal/verify":    {module + "internal/tensor", "crypto/sha256"},
	"internal/tensor":    {"math"}, // float32 bits (Float32bits, Float32frombits, MaxFloat32): pure functions
	"internal/keys":      {"crypto/ed25519", "io", "github.com/mr-tron/base58"},
}

var pureStd = []string{
	"bytes", "cmp", "crypto/sha256", "encoding/binary", "encoding/hex", "encoding/json", "errors", "fmt",
	"math/bits", "slices", "sort", "strconv", "strings", "crypto/ed25519",
}

func TestDeterministicCoresStayPure(t *testing.T) {
	for _, p := range loadPackages(t) {
		extra, isCore := cores[p.dir]
		if !isCore {
			continue
		}
		for name, f := range p.files {
			for _, imp := range imports(f) {
				if !slices.Contains(pureStd, imp) && !slices.Contains(extra, imp) {
					t.Errorf("%s/%s imports %q: a deterministic core may not (widen the list in arch_test.go only with a reason)", p.dir, name, imp)
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.GoStmt:
					t.Errorf("%s/%s starts a goroutine", p.dir, name)
				case *ast.SelectorExpr:
					if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" && slices.Contains([]string{"Now", "Since", "Until", "After", "Sleep", "Tick", "NewTimer", "NewTicker"}, n.Sel.Name) {
						t.Errorf("%s/%s reads the wall clock (time.%s)", p.dir, name, n.Sel.Name)
					}
				case *ast.Ident:
					if p.dir == "internal/ledger" && (n.Name == "float64" || n.Name == "float32") {
						t.Errorf("%s/%s uses %s in consensus code", p.dir, name, n.Name)
					}
				}
				return true
			})
		}
	}
}

// Heavy engines live only in the packages that own them, so the rest builds fast.
var owners = []struct {
	prefix string
	dirs   []string
}{
	{"github.com/cometbft/", []string{"internal/chain"}},
	{"github.com/cosmos/iavl", []string{"internal/store"}},
	{"github.com/nats-io/nats-server", []string{"internal/transport"}},
	// The daemons hold client connections; the server and auth stay in transport.
	// The live-scale simulator (bench/livescale) is a fleet of heartbeating nodes and the
	// router it measures, so it holds connections and a metrics registry too.
	{"github.com/nats-io/", []string{"internal/transport", "internal/transport/transporttest", "internal/router", "internal/node", "internal/validator", "bench/livescale"}},
	{"github.com/docker/", []string{"internal/runtime"}},
	{"github.com/moby/", []string{"internal/runtime"}},
	// The Groth16 prover (gnark, gnark-crypto) is large and slow to build: only zk links it.
	{"github.com/consensys/", []string{"internal/zk"}},
	// NVML needs cgo: only hardware discovery touches it, behind a build constraint.
	{"github.com/NVIDIA/go-nvml", []string{"internal/node/hw"}},
	// cgo of our own: the CUDA driver, opened at run time, behind a build constraint.
	{"C", []string{"internal/cuda"}},
	// Metrics are counted by the daemons, never by the deterministic cores they run.
	{"github.com/prometheus/", []string{"internal/metrics", "internal/metrics/metricstest", "internal/httpapi",
		"internal/chain", "internal/router", "internal/node", "internal/validator", "internal/devnet", "internal/cli", "bench/livescale"}},
}

func TestHeavyImportsStayWithTheirOwners(t *testing.T) {
	for _, p := range loadPackages(t) {
		for name, f := range p.files {
			for _, imp := range imports(f) {
				for _, o := range owners {
					if strings.HasPrefix(imp, o.prefix) && !slices.Contains(o.dirs, p.dir) {
						t.Errorf("%s/%s imports %s; only %v may", p.dir, name, imp, o.dirs)
					}
				}
			}
		}
	}
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range loadPackages(t) {
		documented := false
		for _, f := range p.files {
			documented = documented || f.Doc != nil
		}
		if !documented {
			t.Errorf("package %s has no package doc comment", p.dir)
		}
	}
}
