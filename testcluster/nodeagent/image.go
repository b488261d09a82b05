package nodeagent

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// ImageConfig is the part of an OCI image config a container start needs.
type ImageConfig struct {
	Entrypoint []string `json:"Entrypoint"`
	Cmd        []string `json:"Cmd"`
	Env        []string `json:"Env"`
	User       string   `json:"User"`
	WorkingDir string   `json:"WorkingDir"`
}

// Image is an unpacked image: its root filesystem and config.
type Image struct {
	ID     string // registry/repository@sha256:... of the manifest that was run
	Rootfs string
	Config ImageConfig
}

// images pulls from the registry a pod names, by digest or tag, and keeps unpacked images.
type images struct {
	dir    string
	client *http.Client
	mu     sync.Mutex
	pulled map[string]*Image
}

func newImages(dir string) *images {
	return &images{dir: dir, client: &http.Client{Timeout: 2 * time.Minute}, pulled: map[string]*Image{}}
}

type imageRef struct{ registry, repository, reference string }

func parseRef(ref string) (imageRef, error) {
	slash := strings.Index(ref, "/")
	if slash < 0 {
		return imageRef{}, fmt.Errorf("image %q names no registry", ref)
	}
	r := imageRef{registry: ref[:slash]}
	rest := ref[slash+1:]
	if at := strings.Index(rest, "@"); at >= 0 {
		r.repository, r.reference = rest[:at], rest[at+1:]
	} else if colon := strings.LastIndex(rest, ":"); colon >= 0 {
		r.repository, r.reference = rest[:colon], rest[colon+1:]
	} else {
		r.repository, r.reference = rest, "latest"
	}
	return r, nil
}

func (r imageRef) base() string {
	host := r.registry
	if strings.HasPrefix(host, "localhost") || strings.HasPrefix(host, "127.") {
		return "http://" + host
	}
	return "https://" + host
}

const acceptManifests = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"

// pullError carries the registry's own words, as a kubelet's ErrImagePull message does.
type pullError struct{ msg string }

func (e *pullError) Error() string { return e.msg }

func (im *images) get(r imageRef, path, accept string) ([]byte, string, error) {
	req, _ := http.NewRequest("GET", r.base()+"/v2/"+r.repository+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := im.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != 200 {
		return nil, "", fmt.Errorf("%s %s: %s", resp.Status, path, strings.TrimSpace(string(body)))
	}
	return body, resp.Header.Get("Content-Type"), nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Pull returns the unpacked image, pulling it on first use.
func (im *images) Pull(ref string) (*Image, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if img, ok := im.pulled[ref]; ok {
		return img, nil
	}
	img, err := im.pull(ref)
	if err != nil {
		return nil, &pullError{fmt.Sprintf("failed to pull and unpack image %q: %v", ref, err)}
	}
	im.pulled[ref] = img
	return img, nil
}

func (im *images) pull(ref string) (*Image, error) {
	r, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	body, mediaType, err := im.get(r, "/manifests/"+r.reference, acceptManifests)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(r.reference, "sha256:") && digestOf(body) != r.reference {
		return nil, fmt.Errorf("manifest digest mismatch: got %s", digestOf(body))
	}
	var m struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest    string `json:"digest"`
			MediaType string `json:"mediaType"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	if len(m.Manifests) > 0 || strings.Contains(mediaType, "index") || strings.Contains(mediaType, "list") {
		want := ""
		for _, e := range m.Manifests {
			if e.Platform.OS == "linux" && e.Platform.Architecture == runtime.GOARCH {
				want = e.Digest
				break
			}
		}
		if want == "" {
			return nil, fmt.Errorf("no match for platform linux/%s in manifest list", runtime.GOARCH)
		}
		if body, _, err = im.get(r, "/manifests/"+want, acceptManifests); err != nil {
			return nil, err
		}
		if digestOf(body) != want {
			return nil, fmt.Errorf("manifest digest mismatch for %s", want)
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
	}
	manifestDigest := digestOf(body)
	configBlob, _, err := im.get(r, "/blobs/"+m.Config.Digest, "")
	if err != nil {
		return nil, err
	}
	var config struct {
		Config ImageConfig `json:"config"`
	}
	if err := json.Unmarshal(configBlob, &config); err != nil {
		return nil, err
	}
	root := filepath.Join(im.dir, strings.TrimPrefix(manifestDigest, "sha256:"), "rootfs")
	if _, err := os.Stat(root + ".done"); err != nil {
		os.RemoveAll(root)
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, err
		}
		for _, l := range m.Layers {
			blob, _, err := im.get(r, "/blobs/"+l.Digest, "")
			if err != nil {
				return nil, err
			}
			if digestOf(blob) != l.Digest {
				return nil, fmt.Errorf("layer %s: digest mismatch", l.Digest)
			}
			if err := unpack(blob, strings.HasSuffix(l.MediaType, "gzip"), root); err != nil {
				return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
			}
		}
		if err := os.WriteFile(root+".done", nil, 0o644); err != nil {
			return nil, err
		}
	}
	return &Image{ID: r.registry + "/" + r.repository + "@" + manifestDigest, Rootfs: root, Config: config.Config}, nil
}

// unpack applies one layer to root (whiteouts remove what lower layers put there).
func unpack(blob []byte, gzipped bool, root string) error {
	var rd io.Reader = strings.NewReader(string(blob))
	if gzipped {
		gz, err := gzip.NewReader(rd)
		if err != nil {
			return err
		}
		rd = gz
	}
	tr := tar.NewReader(rd)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean("/" + h.Name)
		target := filepath.Join(root, name)
		base := filepath.Base(name)
		if strings.HasPrefix(base, ".wh.") {
			os.RemoveAll(filepath.Join(filepath.Dir(target), strings.TrimPrefix(base, ".wh.")))
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, os.FileMode(h.Mode)&0o7777|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(target), 0o755)
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, os.FileMode(h.Mode)&0o7777)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(target), 0o755)
			os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			os.MkdirAll(filepath.Dir(target), 0o755)
			os.Remove(target)
			if err := os.Link(filepath.Join(root, filepath.Clean("/"+h.Linkname)), target); err != nil {
				return err
			}
		}
	}
}
