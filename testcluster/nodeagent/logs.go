package nodeagent

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// serveLogs answers the API server's `pods/log` proxying: GET /containerLogs/{ns}/{pod}/{container}
// with tailLines, previous, follow and limitBytes.
func (a *Agent) serveLogs(rw http.ResponseWriter, r *http.Request) {
	ns, name, ctrName := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container")
	w := a.workerFor(ns, name)
	if w == nil {
		http.Error(rw, fmt.Sprintf("pod %s/%s not found on this node", ns, name), http.StatusNotFound)
		return
	}
	var c *container
	for _, x := range w.ctrs {
		if x.spec.Name == ctrName {
			c = x
		}
	}
	if c == nil {
		http.Error(rw, fmt.Sprintf("container %s is not valid for pod %s", ctrName, name), http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	n := c.restarts
	if c.proc == nil && n > 0 {
		n--
	}
	if q.Get("previous") == "true" {
		if c.proc == nil {
			n--
		}
		if n < 0 || (c.proc != nil && c.restarts == 0) {
			http.Error(rw, fmt.Sprintf("previous terminated container %q in pod %q not found", ctrName, name), http.StatusBadRequest)
			return
		}
		if c.proc != nil {
			n = c.restarts - 1
		}
	}
	path := filepath.Join(c.logDir, fmt.Sprintf("%d.log", n))
	data, err := os.ReadFile(path)
	if err != nil {
		http.Error(rw, fmt.Sprintf("container %q in pod %q is waiting to start", ctrName, name), http.StatusBadRequest)
		return
	}
	if t := q.Get("tailLines"); t != "" {
		if lines, err := strconv.Atoi(t); err == nil {
			data = tail(data, lines)
		}
	}
	if l := q.Get("limitBytes"); l != "" {
		if limit, err := strconv.Atoi(l); err == nil && limit < len(data) {
			data = data[:limit]
		}
	}
	rw.Header().Set("Content-Type", "text/plain")
	rw.Write(data)
	if q.Get("follow") != "true" {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	f.Seek(0, io.SeekEnd)
	flusher, _ := rw.(http.Flusher)
	for {
		buf := make([]byte, 32*1024)
		k, _ := f.Read(buf)
		if k > 0 {
			if _, err := rw.Write(buf[:k]); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			continue
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func tail(data []byte, lines int) []byte {
	if lines <= 0 {
		return nil
	}
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end--
	}
	for i := 0; i < lines; i++ {
		j := bytes.LastIndexByte(data[:end], '\n')
		if j < 0 {
			return data
		}
		end = j
	}
	return data[end+1:]
}
