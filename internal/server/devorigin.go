package server

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// devRequestRefusal says why a dev sign-in request is refused, or "" when
// it may mint a token. Dev mode listens on loopback only, but a page on
// another site can still reach it through the browser: by DNS rebinding
// (a foreign name that resolves to 127.0.0.1, sent as Host) or by a
// cross-origin POST. So the Host must name loopback itself, and an Origin,
// when the browser sends one, must be this same origin.
func devRequestRefusal(r *http.Request) string {
	host, port := splitHostPort(r.Host)
	if !loopbackName(host) {
		return "dev sign-in answers only requests for a loopback host (localhost, 127.0.0.1, [::1])"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != scheme || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "dev sign-in answers only pages of this server (Origin " + origin + ")"
	}
	oHost, oPort := splitHostPort(u.Host)
	if !strings.EqualFold(oHost, host) || defaultPort(oPort, scheme) != defaultPort(port, scheme) {
		return "dev sign-in answers only pages of this server (Origin " + origin + ")"
	}
	return ""
}

// splitHostPort splits a Host header or URL host into host (brackets
// removed) and port ("" when absent).
func splitHostPort(hp string) (host, port string) {
	if h, p, err := net.SplitHostPort(hp); err == nil {
		return h, p
	}
	return strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]"), ""
}

func defaultPort(port, scheme string) string {
	if port != "" {
		return port
	}
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// loopbackName reports whether host is "localhost" or a loopback address
// (127.0.0.0/8, ::1).
func loopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}
