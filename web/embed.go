// Package web holds Tandem's browser client: plain ES modules, no build
// step, embedded into the binary.
package web

import "embed"

// Files is the client's static files.
//
//go:embed *.html *.js *.css *.webmanifest icons/*.png app/*.js examples/*.html examples/*.js
var Files embed.FS
