package nodeagent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	backoffStart = 10 * time.Second
	backoffMax   = 300 * time.Second
)

// container is one container's runtime state, as a kubelet would track it.
type container struct {
	spec         corev1.Container
	image        *Image
	proc         *exec.Cmd
	exited       chan struct{}
	exitCode     int
	startedAt    time.Time
	finishedAt   time.Time
	restarts     int32
	last         *corev1.ContainerStateTerminated
	waiting      *corev1.ContainerStateWaiting
	backoff      time.Duration
	nextStart    time.Time
	ready        bool
	liveFails    int
	readyOK      int
	readyFails   int
	lastProbe    map[string]time.Time
	logDir       string
	killedByLive bool
}

// podWorker runs one pod from bind to deletion.
type podWorker struct {
	a       *Agent
	mu      sync.Mutex
	pod     *corev1.Pod
	dir     string
	net     *PodNet
	ctrs    []*container
	wake    chan struct{}
	removed chan struct{}
	once    sync.Once
	started time.Time
	status  *corev1.PodStatus
}

func newPodWorker(a *Agent, pod *corev1.Pod) *podWorker {
	return &podWorker{a: a, pod: pod, dir: filepath.Join(a.cfg.DataDir, "pods", string(pod.UID)),
		wake: make(chan struct{}, 1), removed: make(chan struct{})}
}

func (w *podWorker) update(pod *corev1.Pod) {
	w.mu.Lock()
	w.pod = pod
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *podWorker) current() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

func (w *podWorker) gone() { w.once.Do(func() { close(w.removed) }) }

func (w *podWorker) event(c *container, typ, reason, msg string) {
	pod := w.current()
	ref := corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
	if c != nil {
		ref.FieldPath = fmt.Sprintf("spec.containers{%s}", c.spec.Name)
	}
	now := metav1.Now()
	_, _ = w.a.node.CoreV1().Events(pod.Namespace).Create(w.a.ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: pod.Name + ".", Namespace: pod.Namespace},
		InvolvedObject: ref, Reason: reason, Message: msg, Type: typ,
		Source:         corev1.EventSource{Component: "kubelet", Host: w.a.cfg.NodeName},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}, metav1.CreateOptions{})
}

func (w *podWorker) run() {
	w.started = time.Now()
	defer w.cleanup()
	if err := w.setup(); err != nil {
		fmt.Fprintf(os.Stderr, "nodeagent: pod %s/%s: %v\n", w.pod.Namespace, w.pod.Name, err)
		w.event(nil, "Warning", "FailedCreatePodSandBox", err.Error())
		return
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		pod := w.current()
		if pod.DeletionTimestamp != nil {
			grace := int64(30)
			if pod.DeletionGracePeriodSeconds != nil {
				grace = *pod.DeletionGracePeriodSeconds
			}
			w.stop(time.Duration(grace) * time.Second)
			zero := int64(0)
			uid := pod.UID
			err := w.a.node.CoreV1().Pods(pod.Namespace).Delete(context.Background(), pod.Name,
				metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				fmt.Fprintf(os.Stderr, "nodeagent: delete pod %s/%s: %v\n", pod.Namespace, pod.Name, err)
			}
			return
		}
		for _, c := range w.ctrs {
			w.step(pod, c)
		}
		w.report(pod)
		select {
		case <-w.removed:
			w.stop(0)
			return
		case <-w.a.ctx.Done():
			return
		case <-w.wake:
		case <-tick.C:
		}
	}
}

func (w *podWorker) setup() error {
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return err
	}
	n, err := w.a.cfg.Network.AddPod(string(w.pod.UID))
	if err != nil {
		return err
	}
	w.net = n
	for _, spec := range w.pod.Spec.Containers {
		w.ctrs = append(w.ctrs, &container{spec: spec, lastProbe: map[string]time.Time{},
			logDir: filepath.Join(w.dir, "logs", spec.Name)})
		os.MkdirAll(filepath.Join(w.dir, "logs", spec.Name), 0o755)
	}
	return nil
}

func (w *podWorker) cleanup() {
	if w.net != nil {
		w.a.cfg.Network.RemovePod(w.net)
	}
	os.RemoveAll(filepath.Join(w.dir, "containers"))
}

// stop sends SIGTERM to every running container and SIGKILL after grace.
func (w *podWorker) stop(grace time.Duration) {
	for _, c := range w.ctrs {
		w.kill(c, grace)
	}
}

func (w *podWorker) kill(c *container, grace time.Duration) {
	if c.proc == nil || c.proc.Process == nil {
		return
	}
	select {
	case <-c.exited:
		return
	default:
	}
	_ = syscall.Kill(-c.proc.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-c.proc.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
}

// step moves one container along: pull, start, watch its exit, back off, probe.
func (w *podWorker) step(pod *corev1.Pod, c *container) {
	running := c.proc != nil
	if running {
		select {
		case <-c.exited:
			w.exited(pod, c)
			running = false
		default:
		}
	}
	if running {
		w.probe(c)
		return
	}
	if time.Now().Before(c.nextStart) {
		return
	}
	if c.image == nil {
		if c.waiting == nil || c.waiting.Reason != "ImagePullBackOff" {
			w.event(c, "Normal", "Pulling", fmt.Sprintf("Pulling image %q", c.spec.Image))
		}
		img, err := w.a.images.Pull(c.spec.Image)
		if err != nil {
			w.event(c, "Warning", "Failed", err.Error())
			w.event(c, "Warning", "Failed", "Error: ErrImagePull")
			reason := "ErrImagePull"
			if c.waiting != nil && (c.waiting.Reason == "ErrImagePull" || c.waiting.Reason == "ImagePullBackOff") {
				reason = "ImagePullBackOff"
			}
			c.waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}
			w.bumpBackoff(c)
			if reason == "ImagePullBackOff" {
				c.waiting.Message = fmt.Sprintf("Back-off pulling image %q: %s", c.spec.Image, err.Error())
			}
			return
		}
		c.image = img
		c.backoff = 0
		w.event(c, "Normal", "Pulled", fmt.Sprintf("Successfully pulled image %q", c.spec.Image))
	}
	if c.last != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return
	}
	if c.last != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && c.last.ExitCode == 0 {
		return
	}
	if err := w.start(pod, c); err != nil {
		c.waiting = &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: err.Error()}
		w.event(c, "Warning", "Failed", "Error: "+err.Error())
		w.bumpBackoff(c)
	}
}

func (w *podWorker) bumpBackoff(c *container) {
	if c.backoff == 0 {
		c.backoff = backoffStart
	} else if c.backoff *= 2; c.backoff > backoffMax {
		c.backoff = backoffMax
	}
	c.nextStart = time.Now().Add(c.backoff)
}

func (w *podWorker) exited(pod *corev1.Pod, c *container) {
	reason := "Error"
	if c.exitCode == 0 {
		reason = "Completed"
	}
	c.last = &corev1.ContainerStateTerminated{ExitCode: int32(c.exitCode), Reason: reason,
		StartedAt: metav1.NewTime(c.startedAt), FinishedAt: metav1.NewTime(c.finishedAt),
		ContainerID: fmt.Sprintf("kmcp://%s-%d", c.spec.Name, c.restarts)}
	c.proc, c.ready, c.liveFails, c.readyOK, c.readyFails = nil, false, 0, 0, 0
	if pod.Spec.RestartPolicy == corev1.RestartPolicyNever ||
		(pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && c.exitCode == 0) {
		return
	}
	if time.Since(c.startedAt) > 10*time.Minute {
		c.backoff = 0
	}
	if c.backoff == 0 && c.restarts == 0 {
		c.nextStart = time.Now()
		c.backoff = backoffStart / 2
	} else {
		w.bumpBackoff(c)
		c.waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", c.backoff, c.spec.Name, pod.Name, pod.Namespace, pod.UID)}
		w.event(c, "Warning", "BackOff", "Back-off restarting failed container "+c.spec.Name+" in pod "+pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")")
	}
	c.restarts++
}

// start lays out the container's root (image, volumes, token) and runs its process in the pod's
// network namespace with Kubernetes' command/args rules.
func (w *podWorker) start(pod *corev1.Pod, c *container) error {
	root := filepath.Join(w.dir, "containers", c.spec.Name, "rootfs")
	os.RemoveAll(filepath.Dir(root))
	os.MkdirAll(filepath.Dir(root), 0o755)
	if out, err := exec.Command("cp", "-al", c.image.Rootfs, root).CombinedOutput(); err != nil {
		return fmt.Errorf("prepare rootfs: %v: %s", err, out)
	}
	env, err := w.env(pod, c)
	if err != nil {
		return err
	}
	if err := w.hosts(pod, root); err != nil {
		return err
	}
	for _, m := range c.spec.VolumeMounts {
		if err := w.mount(pod, m, root); err != nil {
			return fmt.Errorf("volume %q: %w", m.Name, err)
		}
	}
	argv := c.image.Config.Entrypoint
	args := c.image.Config.Cmd
	if len(c.spec.Command) > 0 {
		argv, args = c.spec.Command, nil
	}
	if len(c.spec.Args) > 0 {
		args = c.spec.Args
	}
	argv = append(append([]string{}, argv...), args...)
	for i := range argv {
		argv[i] = expand(argv[i], env)
	}
	if len(argv) == 0 {
		return fmt.Errorf("no command specified")
	}
	uid, gid := w.user(pod, c)
	if nonRoot(pod, c) && uid == 0 {
		return fmt.Errorf("container has runAsNonRoot and image will run as root")
	}
	wd := c.spec.WorkingDir
	if wd == "" {
		wd = c.image.Config.WorkingDir
	}
	if wd == "" {
		wd = "/"
	}
	logFile, err := os.OpenFile(filepath.Join(c.logDir, fmt.Sprintf("%d.log", c.restarts)), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	full := append([]string{"--net=/var/run/netns/" + w.net.Namespace, "--root=" + root, "--wd=" + wd,
		"--setuid=" + strconv.Itoa(uid), "--setgid=" + strconv.Itoa(gid), "--"}, argv...)
	cmd := exec.Command("nsenter", full...)
	cmd.Env = envList(env)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	c.proc, c.exited, c.startedAt, c.waiting = cmd, make(chan struct{}), time.Now(), nil
	c.lastProbe = map[string]time.Time{}
	exited := c.exited
	go func() {
		err := cmd.Wait()
		logFile.Close()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
		c.exitCode, c.finishedAt = code, time.Now()
		close(exited)
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}()
	w.event(c, "Normal", "Started", "Started container "+c.spec.Name)
	return nil
}

func nonRoot(pod *corev1.Pod, c *container) bool {
	if c.spec.SecurityContext != nil && c.spec.SecurityContext.RunAsNonRoot != nil {
		return *c.spec.SecurityContext.RunAsNonRoot
	}
	return pod.Spec.SecurityContext != nil && pod.Spec.SecurityContext.RunAsNonRoot != nil && *pod.Spec.SecurityContext.RunAsNonRoot
}

func (w *podWorker) user(pod *corev1.Pod, c *container) (int, int) {
	uid, gid := -1, -1
	if u := c.image.Config.User; u != "" {
		parts := strings.SplitN(u, ":", 2)
		if n, err := strconv.Atoi(parts[0]); err == nil {
			uid, gid = n, n
		}
		if len(parts) == 2 {
			if n, err := strconv.Atoi(parts[1]); err == nil {
				gid = n
			}
		}
	}
	if sc := pod.Spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = int(*sc.RunAsUser)
		}
		if sc.RunAsGroup != nil {
			gid = int(*sc.RunAsGroup)
		}
	}
	if sc := c.spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = int(*sc.RunAsUser)
		}
		if sc.RunAsGroup != nil {
			gid = int(*sc.RunAsGroup)
		}
	}
	if uid < 0 {
		uid = 0
	}
	if gid < 0 {
		gid = 0
	}
	return uid, gid
}

type envVar struct{ name, value string }

// env is the image's env, the service variables, then the container's own (later wins).
func (w *podWorker) env(pod *corev1.Pod, c *container) ([]envVar, error) {
	var env []envVar
	for _, kv := range c.image.Config.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env = append(env, envVar{k, v})
		}
	}
	// As a kubelet does: the `kubernetes` Service's ClusterIP and port, which the proxy forwards.
	host, port := w.a.kubernetesService()
	env = append(env,
		envVar{"KUBERNETES_SERVICE_HOST", host}, envVar{"KUBERNETES_SERVICE_PORT", port},
		envVar{"KUBERNETES_SERVICE_PORT_HTTPS", port}, envVar{"KUBERNETES_PORT", "tcp://" + host + ":" + port},
		envVar{"HOSTNAME", pod.Name})
	for _, e := range c.spec.Env {
		value := expand(e.Value, env)
		if f := e.ValueFrom; f != nil {
			switch {
			case f.FieldRef != nil:
				value = fieldValue(pod, f.FieldRef.FieldPath, w.net.IP, w.a.cfg.Network.NodeIP)
			case f.ConfigMapKeyRef != nil:
				cm, err := w.a.node.CoreV1().ConfigMaps(pod.Namespace).Get(w.a.ctx, f.ConfigMapKeyRef.Name, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				value = cm.Data[f.ConfigMapKeyRef.Key]
			case f.SecretKeyRef != nil:
				s, err := w.a.node.CoreV1().Secrets(pod.Namespace).Get(w.a.ctx, f.SecretKeyRef.Name, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				value = string(s.Data[f.SecretKeyRef.Key])
			}
		}
		env = append(env, envVar{e.Name, value})
	}
	return env, nil
}

func fieldValue(pod *corev1.Pod, path, podIP, hostIP string) string {
	switch path {
	case "metadata.namespace":
		return pod.Namespace
	case "metadata.name":
		return pod.Name
	case "metadata.uid":
		return string(pod.UID)
	case "spec.nodeName":
		return pod.Spec.NodeName
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName
	case "status.podIP":
		return podIP
	case "status.hostIP":
		return hostIP
	}
	return ""
}

func envList(env []envVar) []string {
	seen := map[string]int{}
	var out []string
	for _, e := range env {
		if i, ok := seen[e.name]; ok {
			out[i] = e.name + "=" + e.value
			continue
		}
		seen[e.name] = len(out)
		out = append(out, e.name+"="+e.value)
	}
	return out
}

// expand replaces $(VAR) with the variable's value, as Kubernetes does in command, args and env.
func expand(s string, env []envVar) string {
	if !strings.Contains(s, "$(") {
		return s
	}
	for i := len(env) - 1; i >= 0; i-- {
		s = strings.ReplaceAll(s, "$("+env[i].name+")", env[i].value)
	}
	return s
}

// hosts writes /etc/hosts as a kubelet does, plus the `kubernetes` Service's names: the stand-in
// for cluster DNS. nsswitch.conf makes every resolver read it first.
func (w *podWorker) hosts(pod *corev1.Pod, root string) error {
	clusterIP, _ := w.a.kubernetesService()
	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost\n%s\t%s\n%s\tkubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local\n",
		w.net.IP, pod.Name, clusterIP)
	for name, text := range map[string]string{"hosts": hosts, "nsswitch.conf": "hosts: files dns\n"} {
		p := filepath.Join(etc, name)
		os.Remove(p)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// mount writes a volume's content at its mount path inside the container's root.
func (w *podWorker) mount(pod *corev1.Pod, m corev1.VolumeMount, root string) error {
	var vol *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == m.Name {
			vol = &pod.Spec.Volumes[i]
		}
	}
	if vol == nil {
		return fmt.Errorf("no such volume")
	}
	target := filepath.Join(root, filepath.Clean("/"+m.MountPath))
	files := map[string][]byte{}
	mode := os.FileMode(0o755)
	switch {
	case vol.EmptyDir != nil:
		mode = 0o1777
	case vol.ConfigMap != nil:
		cm, err := w.a.node.CoreV1().ConfigMaps(pod.Namespace).Get(w.a.ctx, vol.ConfigMap.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for k, v := range cm.Data {
			files[k] = []byte(v)
		}
	case vol.Secret != nil:
		s, err := w.a.node.CoreV1().Secrets(pod.Namespace).Get(w.a.ctx, vol.Secret.SecretName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for k, v := range s.Data {
			files[k] = v
		}
	case vol.Projected != nil:
		for _, src := range vol.Projected.Sources {
			switch {
			case src.ServiceAccountToken != nil:
				token, err := w.token(pod, src.ServiceAccountToken)
				if err != nil {
					return err
				}
				files[src.ServiceAccountToken.Path] = []byte(token)
			case src.ConfigMap != nil:
				cm, err := w.a.node.CoreV1().ConfigMaps(pod.Namespace).Get(w.a.ctx, src.ConfigMap.Name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				for _, item := range src.ConfigMap.Items {
					files[item.Path] = []byte(cm.Data[item.Key])
				}
				if len(src.ConfigMap.Items) == 0 {
					for k, v := range cm.Data {
						files[k] = []byte(v)
					}
				}
			case src.DownwardAPI != nil:
				for _, item := range src.DownwardAPI.Items {
					if item.FieldRef != nil {
						files[item.Path] = []byte(fieldValue(pod, item.FieldRef.FieldPath, w.net.IP, w.a.cfg.Network.NodeIP))
					}
				}
			}
		}
	default:
		return fmt.Errorf("volume type not supported by the node agent")
	}
	if m.SubPath != "" {
		data, ok := files[m.SubPath]
		if !ok {
			return os.MkdirAll(target, mode)
		}
		os.MkdirAll(filepath.Dir(target), 0o755)
		return os.WriteFile(target, data, 0o644)
	}
	os.RemoveAll(target)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(target, mode); err != nil {
		return err
	}
	for name, data := range files {
		p := filepath.Join(target, filepath.Clean("/"+name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// token asks the API server for the pod's ServiceAccount token, bound to the pod, as a kubelet does.
func (w *podWorker) token(pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error) {
	seconds := int64(3607)
	if src.ExpirationSeconds != nil {
		seconds = *src.ExpirationSeconds
	}
	var audiences []string
	if src.Audience != "" {
		audiences = []string{src.Audience}
	}
	tr, err := w.a.node.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(w.a.ctx, pod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &seconds,
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	return tr.Status.Token, nil
}

// report writes the pod's status when it differs from what was last written.
func (w *podWorker) report(pod *corev1.Pod) {
	status := w.computeStatus(pod)
	if w.status != nil && statusEqual(*w.status, status) {
		return
	}
	fresh := pod.DeepCopy()
	fresh.Status = status
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			fresh.Status.Conditions = append([]corev1.PodCondition{c}, fresh.Status.Conditions...)
		}
	}
	if _, err := w.a.node.CoreV1().Pods(pod.Namespace).UpdateStatus(w.a.ctx, fresh, metav1.UpdateOptions{}); err != nil {
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) && w.a.ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "nodeagent: status of %s/%s: %v\n", pod.Namespace, pod.Name, err)
		}
		return
	}
	w.status = &status
}

func statusEqual(a, b corev1.PodStatus) bool {
	strip := func(s corev1.PodStatus) corev1.PodStatus {
		s = *s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastTransitionTime = metav1.Time{}
		}
		return s
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

func (w *podWorker) computeStatus(pod *corev1.Pod) corev1.PodStatus {
	prev := map[corev1.PodConditionType]corev1.PodCondition{}
	if w.status != nil {
		for _, c := range w.status.Conditions {
			prev[c.Type] = c
		}
	}
	cond := func(t corev1.PodConditionType, ok bool, reason string) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		c := corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.Now()}
		if !ok {
			c.Reason = reason
		}
		if p, found := prev[t]; found && p.Status == s {
			c.LastTransitionTime = p.LastTransitionTime
		}
		return c
	}
	allReady, anyRunning, allDone, anyFailed := true, false, true, false
	var statuses []corev1.ContainerStatus
	for _, c := range w.ctrs {
		cs := corev1.ContainerStatus{Name: c.spec.Name, Image: c.spec.Image, RestartCount: c.restarts, Ready: c.ready}
		if c.image != nil {
			cs.ImageID = c.image.ID
		}
		if c.last != nil {
			cs.LastTerminationState.Terminated = c.last
		}
		started := false
		switch {
		case c.proc != nil:
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.startedAt)}
			cs.ContainerID = fmt.Sprintf("kmcp://%s-%d", c.spec.Name, c.restarts)
			started, anyRunning, allDone = true, true, false
		case c.waiting != nil:
			cs.State.Waiting = c.waiting
			allDone = false
		case c.last != nil && (pod.Spec.RestartPolicy == corev1.RestartPolicyNever ||
			(pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && c.last.ExitCode == 0)):
			cs.State.Terminated = c.last
			cs.LastTerminationState = corev1.ContainerState{}
			anyFailed = anyFailed || c.last.ExitCode != 0
		default:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
			allDone = false
		}
		cs.Started = &started
		allReady = allReady && c.ready
		statuses = append(statuses, cs)
	}
	phase := corev1.PodPending
	switch {
	case allDone && anyFailed:
		phase = corev1.PodFailed
	case allDone:
		phase = corev1.PodSucceeded
	case anyRunning || w.anyRestarted():
		phase = corev1.PodRunning
	}
	start := metav1.NewTime(w.started)
	return corev1.PodStatus{
		Phase: phase,
		Conditions: []corev1.PodCondition{
			cond(corev1.PodReadyToStartContainers, true, ""),
			cond(corev1.PodInitialized, true, ""),
			cond(corev1.ContainersReady, allReady, "ContainersNotReady"),
			cond(corev1.PodReady, allReady, "ContainersNotReady"),
		},
		HostIP:            w.a.cfg.Network.NodeIP,
		HostIPs:           []corev1.HostIP{{IP: w.a.cfg.Network.NodeIP}},
		PodIP:             w.net.IP,
		PodIPs:            []corev1.PodIP{{IP: w.net.IP}},
		StartTime:         &start,
		ContainerStatuses: statuses,
		QOSClass:          pod.Status.QOSClass,
	}
}

func (w *podWorker) anyRestarted() bool {
	for _, c := range w.ctrs {
		if c.restarts > 0 || c.last != nil {
			return true
		}
	}
	return false
}
