package tensor

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestImportsKeepThePackageDeterministic fails when non-test code imports
// anything beyond an allow-list of pure packages: no I/O, clocks,
// goroutine-heavy or random-number packages. Widen the list deliberately.
func TestImportsKeepThePackageDeterministic(t *testing.T) {
	allowed := []string{
		"encoding/binary", "errors", "fmt",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if name == "doc.go" && f.Doc == nil {
			t.Errorf("doc.go has no package comment")
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !slices.Contains(allowed, path) {
				t.Errorf("%s imports %q, which is not on the allow-list for a deterministic core", name, path)
			}
		}
	}
}
