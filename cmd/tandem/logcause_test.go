package main

import (
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestErrorLinesNameTheirCause reads Tandem's source: every error line it
// logs (a logger's Error with a message) carries an err or reason
// attribute, so that an operator woken by it reads why in it. The soaks
// check the same of the lines their nodes log (testkit.Causes).
func TestErrorLinesNameTheirCause(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := gotoken.NewFileSet()
	calls := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Error" || !isLogger(sel.X) {
				return true
			}
			if msg, ok := call.Args[0].(*ast.BasicLit); !ok || msg.Kind != gotoken.STRING {
				return true
			}
			calls++
			for i := 1; i < len(call.Args); i += 2 {
				if k, ok := call.Args[i].(*ast.BasicLit); ok && k.Kind == gotoken.STRING {
					if key, _ := strconv.Unquote(k.Value); key == "err" || key == "reason" {
						return true
					}
				}
			}
			t.Errorf("%s: an error line without an err or reason attribute", fset.Position(call.Pos()))
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls < 20 {
		t.Fatalf("found only %d error lines: the walk missed the source", calls)
	}
	t.Logf("%d error lines checked", calls)
}

// isLogger reports whether x names a logger: log, slog, or a field or
// variable called log or logger.
func isLogger(x ast.Expr) bool {
	switch x := x.(type) {
	case *ast.Ident:
		return x.Name == "log" || x.Name == "slog" || x.Name == "logger"
	case *ast.SelectorExpr:
		return x.Sel.Name == "log" || x.Sel.Name == "logger" || x.Sel.Name == "Log" || x.Sel.Name == "Logger"
	}
	return false
}
