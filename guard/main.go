// kmcp-guard stands in front of the MCP server in its pod and passes on only requests addressed
// to the deployment by the name the user connects with: its Host is one of --allow-host (or a
// loopback name), and its Origin, when a browser sends one, names such a host too. A page that a
// DNS rebinding attack points at the node sends its own name in both, and gets 403.
package main

import (
	"bytes"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"
)

// maxRequest bounds a request's body, read whole before it is passed on.
const maxRequest = 8 << 20

func main() {
	listen := flag.String("listen", ":8081", "address to listen on")
	upstream := flag.String("upstream", "127.0.0.1:8080", "the server's address in the pod")
	hosts := flag.String("allow-host", "", "comma-separated names or addresses clients connect with")
	flag.Parse()
	allowed := allowList(*hosts)
	if len(allowed) == 0 {
		log.Fatal("kmcp-guard: no --allow-host given")
	}
	target := &url.URL{Scheme: "http", Host: *upstream}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			// Host becomes the server's own address: the request was checked here, and the server's
			// SDK refuses a foreign Host on a loopback connection.
			r.SetURL(target)
		},
		// Every write of an SSE answer reaches the client at once.
		FlushInterval: -1,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 32,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if why := refusal(r, allowed); why != "" {
			log.Printf("kmcp-guard: refused %s %s from %s: %s", r.Method, r.URL.Path, r.RemoteAddr, why)
			http.Error(w, "kmcp-guard: "+why, http.StatusForbidden)
			return
		}
		// The request is read whole before it is passed on: net/http's server closes an unread
		// request body when the answer starts, and a transport still reading it then cuts the
		// answer short (golang/go#40747). MCP requests are small JSON messages.
		if r.Body != nil && r.ContentLength != 0 {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
			if err != nil {
				http.Error(w, "kmcp-guard: cannot read the request: "+err.Error(), http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			r.TransferEncoding = nil
		}
		proxy.ServeHTTP(w, r)
	})
	log.Printf("kmcp-guard: listening on %s for %s, passing to %s", *listen, strings.Join(keys(allowed), ", "), *upstream)
	server := &http.Server{Addr: *listen, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	if err := server.ListenAndServe(); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// refusal says why a request is not passed on, or "" when it is.
func refusal(r *http.Request, allowed map[string]bool) string {
	if !allowedHost(hostname(r.Host), allowed) {
		return "Host " + quote(r.Host) + " is not this deployment's address"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !allowedHost(strings.ToLower(u.Hostname()), allowed) {
		return "Origin " + quote(origin) + " is not this deployment's address"
	}
	return ""
}

func allowedHost(host string, allowed map[string]bool) bool {
	if allowed[host] || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostname is a Host header's name or address without its port, lower case.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.Trim(host, "[]"))
}

func allowList(list string) map[string]bool {
	allowed := map[string]bool{}
	for _, h := range strings.Split(list, ",") {
		if h = strings.TrimSpace(h); h != "" {
			allowed[hostname(h)] = true
		}
	}
	return allowed
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return "'" + strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s) + "'"
}
