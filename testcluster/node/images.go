package node

// The node's own images (the pause sandbox and CoreDNS), each one static binary in one layer,
// pushed to the test registry as an OCI image.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// PushBinaryImage pushes an image holding one file, <path> (from the file bin), whose
// entrypoint is that file; it returns the reference by digest.
func PushBinaryImage(registry, repo, tag, bin, path string, entrypoint []string) (string, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	_ = tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(path, "/"), Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg})
	_, _ = tw.Write(data)
	_ = tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(raw.Bytes())
	_ = zw.Close()
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": entrypoint, "WorkingDir": "/"},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(raw.Bytes())}},
	})
	base := "http://" + registry + "/v2/" + repo
	for _, blob := range [][]byte{config, gz.Bytes()} {
		if err := pushBlob(base, blob); err != nil {
			return "", err
		}
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(gz.Bytes()), "size": gz.Len()}},
	})
	req, _ := http.NewRequest(http.MethodPut, base+"/manifests/"+tag, bytes.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if err := do(req, http.StatusCreated); err != nil {
		return "", fmt.Errorf("push %s:%s: %w", repo, tag, err)
	}
	return registry + "/" + repo + "@" + digest(manifest), nil
}

func digest(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

func pushBlob(base string, blob []byte) error {
	resp, err := http.Post(base+"/blobs/uploads/", "application/octet-stream", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("start upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	if strings.HasPrefix(loc, "/") {
		loc = base[:strings.Index(base, "/v2/")] + loc
	}
	req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest="+digest(blob), bytes.NewReader(blob))
	req.Header.Set("Content-Type", "application/octet-stream")
	return do(req, http.StatusCreated)
}

func do(req *http.Request, want int) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, body)
	}
	return nil
}
