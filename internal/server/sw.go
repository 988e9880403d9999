package server

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io/fs"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/tandemcall/tandem/web"
)

// The service worker is served with the list of the app's files filled
// in, from the files embedded in this binary: it caches exactly this
// version's shell, and a new binary is a new cache.

func init() {
	// Browsers read the manifest whatever its type, but validators and
	// some proxies want the registered one.
	_ = mime.AddExtensionType(".webmanifest", "application/manifest+json")
}

var (
	swOnce sync.Once
	swBody []byte
)

func serviceWorker() []byte {
	swOnce.Do(func() {
		src, err := fs.ReadFile(web.Files, "sw.js")
		if err != nil {
			return
		}
		files := []string{"/"}
		_ = fs.WalkDir(web.Files, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || p == "sw.js" || strings.HasPrefix(p, "examples/") {
				return err
			}
			files = append(files, "/"+p)
			return nil
		})
		list, _ := json.Marshal(files)
		body := strings.Replace(string(src), "__TANDEM_SHELL_FILES__", string(list), 1)
		body = strings.Replace(body, "__TANDEM_VERSION__", Version+"-"+shellDigest(files), 1)
		swBody = []byte(body)
	})
	return swBody
}

// shellDigest names the shell's content, so that a changed file is a new
// cache even within one version number.
func shellDigest(files []string) string {
	h := fnv.New32a()
	for _, f := range files {
		b, _ := fs.ReadFile(web.Files, strings.TrimPrefix(f, "/"))
		h.Write(b)
	}
	return fmt.Sprintf("%08x", h.Sum32())
}

func (s *Server) serveWorker(w http.ResponseWriter, r *http.Request) {
	b := serviceWorker()
	if b == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Service-Worker-Allowed", "/")
	_, _ = w.Write(b)
}
