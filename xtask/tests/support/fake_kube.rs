//! FAKE Kubernetes API server: real HTTP and real Kubernetes JSON, with the semantics the xtask
//! relies on (404/409/422 Status objects, server-side apply by field manager, JSON merge patch,
//! resourceVersion, NodePort allocation in 30000-32767, namespace termination, Deployment
//! generation and status, pod logs, events, SubjectAccessReview). Also the FAKE `helm`, which
//! renders the chart's Service, Deployment and ConfigMap into this store the way the upstream
//! chart does, and keeps its releases as `sh.helm.release.v1.*` Secrets.

use super::fake_cli::{Call, Outcome};
use super::http::{Request, Response, Server};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// What the fake controller does with a Deployment after helm writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// Status complete for the current generation at once.
    Ready,
    /// Pods never become available (the test adds pods, events and logs).
    Stuck,
}

#[derive(Default)]
struct Store {
    objects: BTreeMap<String, Value>,
    /// per object key and manager: the last configuration that manager applied
    applied: HashMap<(String, String), Value>,
    logs: HashMap<String, String>,
    rv: u64,
    requests: Vec<String>,
    terminating: HashMap<String, u32>,
    rollout: Option<Rollout>,
    seed: u64,
}

pub struct FakeKube {
    server: Server,
    store: Arc<Mutex<Store>>,
    pub kubeconfig: tempfile::NamedTempFile,
}

struct Target {
    /// `/api/v1` or `/apis/group/version`
    prefix: String,
    namespace: Option<String>,
    plural: String,
    name: Option<String>,
    sub: Option<String>,
}

impl Target {
    fn parse(path: &str) -> Option<Target> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (prefix, rest) = match *segs.first()? {
            "api" => (format!("/api/{}", segs.get(1)?), &segs[2..]),
            "apis" => (format!("/apis/{}/{}", segs.get(1)?, segs.get(2)?), &segs[3..]),
            _ => return None,
        };
        if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
            Some(Target {
                prefix,
                namespace: Some(rest[1].into()),
                plural: rest[2].into(),
                name: rest.get(3).map(|s| s.to_string()),
                sub: rest.get(4).map(|s| s.to_string()),
            })
        } else {
            Some(Target {
                prefix,
                namespace: None,
                plural: rest.first()?.to_string(),
                name: rest.get(1).map(|s| s.to_string()),
                sub: rest.get(2).map(|s| s.to_string()),
            })
        }
    }
    fn collection(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/namespaces/{ns}/{}", self.prefix, self.plural),
            None => format!("{}/{}", self.prefix, self.plural),
        }
    }
    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.collection())
    }
}

fn status(code: u16, reason: &str, message: String) -> Response {
    Response::json(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}),
    )
}

fn kind_of(plural: &str) -> (&'static str, &'static str) {
    match plural {
        "namespaces" => ("Namespace", "v1"),
        "serviceaccounts" => ("ServiceAccount", "v1"),
        "configmaps" => ("ConfigMap", "v1"),
        "secrets" => ("Secret", "v1"),
        "services" => ("Service", "v1"),
        "pods" => ("Pod", "v1"),
        "events" => ("Event", "v1"),
        "nodes" => ("Node", "v1"),
        "deployments" => ("Deployment", "apps/v1"),
        "clusterroles" => ("ClusterRole", "rbac.authorization.k8s.io/v1"),
        "clusterrolebindings" => ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1"),
        "roles" => ("Role", "rbac.authorization.k8s.io/v1"),
        "rolebindings" => ("RoleBinding", "rbac.authorization.k8s.io/v1"),
        _ => ("Unknown", "v1"),
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().unwrap();
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Removes from `object` the fields `previous` set that `current` no longer sets (SSA ownership).
fn drop_released(object: &mut Value, previous: &Value, current: &Value) {
    if let (Some(o), Some(p)) = (object.as_object_mut(), previous.as_object()) {
        for (k, pv) in p {
            match current.get(k) {
                None => {
                    o.remove(k);
                }
                Some(cv) => {
                    if let Some(ov) = o.get_mut(k) {
                        drop_released(ov, pv, cv);
                    }
                }
            }
        }
    }
}

fn without_meta_noise(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["resourceVersion", "managedFields", "generation", "uid", "creationTimestamp"] {
            m.remove(k);
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

fn labels_match(obj: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').unwrap_or((term, ""));
        obj["metadata"]["labels"][k].as_str() == Some(v)
    })
}

fn fields_match(obj: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (path, v) = term.split_once('=').unwrap_or((term, ""));
        let mut cur = obj;
        for p in path.split('.') {
            cur = &cur[p];
        }
        cur.as_str() == Some(v)
    })
}

impl Store {
    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn random(&mut self) -> u64 {
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.seed >> 33
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.objects.contains_key(&format!("/api/v1/namespaces/{ns}"))
    }

    fn node_ports_in_use(&self, except: &str) -> Vec<i64> {
        self.objects
            .iter()
            .filter(|(k, _)| k.contains("/services/") && k.as_str() != except)
            .flat_map(|(_, v)| v["spec"]["ports"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["nodePort"].as_i64())
            .collect()
    }

    /// Allocates or checks nodePorts the way the API server does.
    fn settle_service(&mut self, key: &str, obj: &mut Value) -> Result<(), Response> {
        if obj["spec"]["type"].as_str() != Some("NodePort") {
            return Ok(());
        }
        let used = self.node_ports_in_use(key);
        let count = obj["spec"]["ports"].as_array().map_or(0, Vec::len);
        for i in 0..count {
            match obj["spec"]["ports"][i]["nodePort"].as_i64() {
                Some(p) if !(30000..=32767).contains(&p) => {
                    return Err(status(422, "Invalid", format!("Service \"{key}\" is invalid: spec.ports[{i}].nodePort: Invalid value: {p}: provided port is not in the valid range. The range of valid ports is 30000-32767")));
                }
                Some(p) if used.contains(&p) => {
                    return Err(status(422, "Invalid", format!("Service \"{key}\" is invalid: spec.ports[{i}].nodePort: Invalid value: {p}: provided port is already allocated")));
                }
                Some(_) => {}
                None => loop {
                    let p = 30000 + (self.random() % 2768) as i64;
                    if !used.contains(&p) {
                        obj["spec"]["ports"][i]["nodePort"] = json!(p);
                        break;
                    }
                },
            }
        }
        Ok(())
    }

    /// Writes `obj` at `key` (create or update), with the side effects of the real API server.
    fn store(
        &mut self,
        t: &Target,
        name: &str,
        mut obj: Value,
        manager: Option<&str>,
        operation: &str,
    ) -> Result<Value, Response> {
        let key = t.key(name);
        let (kind, api_version) = kind_of(&t.plural);
        if let Some(ns) = &t.namespace {
            if !self.namespace_exists(ns) {
                return Err(status(404, "NotFound", format!("namespaces \"{ns}\" not found")));
            }
            if self.terminating.contains_key(&format!("/api/v1/namespaces/{ns}")) {
                return Err(status(403, "Forbidden", format!("{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated", t.plural)));
            }
            obj["metadata"]["namespace"] = json!(ns);
        }
        obj["metadata"]["name"] = json!(name);
        obj["kind"] = json!(kind);
        obj["apiVersion"] = json!(api_version);
        let old = self.objects.get(&key).cloned();
        if t.plural == "services" {
            if let Some(old) = &old {
                // The API server keeps an allocated nodePort when an update leaves it out.
                let count = obj["spec"]["ports"].as_array().map_or(0, Vec::len);
                for i in 0..count {
                    if obj["spec"]["ports"][i]["nodePort"].is_null()
                        && old["spec"]["ports"][i]["port"] == obj["spec"]["ports"][i]["port"]
                    {
                        obj["spec"]["ports"][i]["nodePort"] = old["spec"]["ports"][i]["nodePort"].clone();
                    }
                }
            }
            self.settle_service(&key, &mut obj)?;
        }
        if let Some(old) = &old {
            // A write that leaves status out keeps the old one, so only a given status can differ.
            let status_same = obj.get("status").is_none_or(|s| old.get("status") == Some(s));
            if without_meta_noise(old) == without_meta_noise(&obj) && status_same {
                return Ok(old.clone());
            }
            obj["metadata"]["uid"] = old["metadata"]["uid"].clone();
            obj["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            let spec_changed = old.get("spec") != obj.get("spec");
            obj["metadata"]["generation"] = json!(if spec_changed { generation + 1 } else { generation });
            if obj.get("status").is_none() {
                if let Some(s) = old.get("status") {
                    obj["status"] = s.clone();
                }
            }
        } else {
            obj["metadata"]["uid"] = json!(format!("uid-{}", self.rv + 1));
            obj["metadata"]["creationTimestamp"] = json!("2026-11-25T00:00:00Z");
            obj["metadata"]["generation"] = json!(1);
            if kind == "Namespace" {
                obj["status"] = json!({"phase": "Active"});
            }
        }
        if let Some(m) = manager {
            let mut fields =
                old.as_ref().and_then(|o| o["metadata"]["managedFields"].as_array().cloned()).unwrap_or_default();
            fields.retain(|f| f["manager"].as_str() != Some(m) || f["operation"].as_str() != Some(operation));
            fields.push(json!({"manager": m, "operation": operation, "apiVersion": api_version}));
            obj["metadata"]["managedFields"] = json!(fields);
        }
        obj["metadata"]["resourceVersion"] = json!(self.next_rv());
        if kind == "Deployment" {
            self.controller(&mut obj);
        }
        self.objects.insert(key, obj.clone());
        Ok(obj)
    }

    fn controller(&self, d: &mut Value) {
        if self.rollout.unwrap_or(Rollout::Ready) == Rollout::Ready {
            let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
            d["status"] = json!({
                "observedGeneration": d["metadata"]["generation"],
                "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
            });
        } else {
            let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
            d["status"] = json!({"observedGeneration": d["metadata"]["generation"], "replicas": replicas, "updatedReplicas": replicas, "unavailableReplicas": replicas});
        }
    }

    fn handle(&mut self, req: &Request) -> Response {
        self.requests.push(format!("{} {}", req.method, req.path));
        if req.path == "/version" {
            return Response::json(
                200,
                &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.4+k0s-fake", "gitCommit": "fake", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"}),
            );
        }
        let Some(t) = Target::parse(&req.path) else {
            return status(404, "NotFound", format!("the server could not find the requested resource ({})", req.path));
        };
        if t.plural == "subjectaccessreviews" && req.method == "POST" {
            return self.review(req);
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        match (req.method.as_str(), &t.name) {
            ("GET", None) => self.list(&t, req),
            ("GET", Some(name)) => self.get(&t, name, req),
            ("POST", None) => {
                let name = body["metadata"]["name"].as_str().unwrap_or_default().to_string();
                if self.objects.contains_key(&t.key(&name)) {
                    return status(409, "AlreadyExists", format!("{} \"{name}\" already exists", t.plural));
                }
                match self.store(&t, &name, body, req.query.get("fieldManager").map(String::as_str), "Update") {
                    Ok(v) => Response::json(201, &v),
                    Err(r) => r,
                }
            }
            ("PUT", Some(name)) => {
                let Some(old) = self.objects.get(&t.key(name)) else {
                    return status(404, "NotFound", format!("{} \"{name}\" not found", t.plural));
                };
                if let Some(rv) = body["metadata"]["resourceVersion"].as_str() {
                    if old["metadata"]["resourceVersion"].as_str() != Some(rv) {
                        return status(409, "Conflict", format!("Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", t.plural));
                    }
                }
                match self.store(&t, name, body, req.query.get("fieldManager").map(String::as_str), "Update") {
                    Ok(v) => Response::json(200, &v),
                    Err(r) => r,
                }
            }
            ("PATCH", Some(name)) => self.patch(&t, name, req, body),
            ("DELETE", Some(name)) => self.delete(&t, name),
            _ => status(405, "MethodNotAllowed", format!("{} {} is not supported", req.method, req.path)),
        }
    }

    fn get(&mut self, t: &Target, name: &str, req: &Request) -> Response {
        let key = t.key(name);
        if t.sub.as_deref() == Some("log") {
            if !self.objects.contains_key(&key) {
                return status(404, "NotFound", format!("pods \"{name}\" not found"));
            }
            let logs = self.logs.get(&key).cloned().unwrap_or_default();
            let lines: Vec<&str> = logs.lines().collect();
            let tail = req.query.get("tailLines").and_then(|t| t.parse().ok()).unwrap_or(lines.len());
            let body = lines[lines.len().saturating_sub(tail)..].join("\n").into_bytes();
            return Response { status: 200, content_type: "text/plain", body };
        }
        if let Some(left) = self.terminating.get_mut(&key) {
            if *left == 0 {
                self.terminating.remove(&key);
                self.remove_namespace(name);
            } else {
                *left -= 1;
            }
        }
        match self.objects.get(&key) {
            Some(v) => Response::json(200, v),
            None => status(404, "NotFound", format!("{} \"{name}\" not found", t.plural)),
        }
    }

    fn list(&self, t: &Target, req: &Request) -> Response {
        let prefix = format!("{}/", t.collection());
        let labels = req.query.get("labelSelector").cloned().unwrap_or_default();
        let fields = req.query.get("fieldSelector").cloned().unwrap_or_default();
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
            .map(|(_, v)| v.clone())
            .filter(|v| labels_match(v, &labels) && fields_match(v, &fields))
            .collect();
        let (kind, api_version) = kind_of(&t.plural);
        Response::json(
            200,
            &json!({"kind": format!("{kind}List"), "apiVersion": api_version, "metadata": {"resourceVersion": self.rv.to_string()}, "items": items}),
        )
    }

    fn patch(&mut self, t: &Target, name: &str, req: &Request, body: Value) -> Response {
        let key = t.key(name);
        let content_type = req.headers.get("content-type").cloned().unwrap_or_default();
        let manager = req.query.get("fieldManager").cloned();
        let old = self.objects.get(&key).cloned();
        let result = if content_type.starts_with("application/apply-patch") {
            let Some(manager) = manager else {
                return status(400, "BadRequest", "PATCH with apply-patch requires a fieldManager".into());
            };
            let mut obj = old.clone().unwrap_or_else(|| json!({"metadata": {}}));
            if let Some(prev) = self.applied.get(&(key.clone(), manager.clone())) {
                drop_released(&mut obj, prev, &body);
            }
            merge_patch(&mut obj, &body);
            self.applied.insert((key.clone(), manager.clone()), body);
            self.store(t, name, obj, Some(&manager), "Apply")
        } else if content_type.starts_with("application/merge-patch+json") {
            let Some(mut obj) = old.clone() else {
                return status(404, "NotFound", format!("{} \"{name}\" not found", t.plural));
            };
            merge_patch(&mut obj, &body);
            self.store(t, name, obj, manager.as_deref(), "Update")
        } else {
            return status(
                415,
                "UnsupportedMediaType",
                format!("the fake supports apply and merge patches, not {content_type}"),
            );
        };
        match result {
            Ok(v) => Response::json(if old.is_some() { 200 } else { 201 }, &v),
            Err(r) => r,
        }
    }

    fn delete(&mut self, t: &Target, name: &str) -> Response {
        let key = t.key(name);
        let Some(mut obj) = self.objects.get(&key).cloned() else {
            return status(404, "NotFound", format!("{} \"{name}\" not found", t.plural));
        };
        if t.plural == "namespaces" {
            obj["metadata"]["deletionTimestamp"] = json!("2026-11-25T00:00:00Z");
            obj["status"] = json!({"phase": "Terminating"});
            self.objects.insert(key.clone(), obj.clone());
            self.terminating.entry(key).or_insert(1);
            return Response::json(200, &obj);
        }
        self.objects.remove(&key);
        self.applied.retain(|(k, _), _| k != &key);
        Response::json(200, &obj)
    }

    fn remove_namespace(&mut self, ns: &str) {
        let inside = format!("/namespaces/{ns}/");
        let key = format!("/api/v1/namespaces/{ns}");
        self.objects.retain(|k, _| !k.contains(&inside) && k != &key);
        self.applied.retain(|(k, _), _| !k.contains(&inside) && k != &key);
    }

    /// SubjectAccessReview, decided by RBAC over the stored (Cluster)Roles and (Cluster)RoleBindings,
    /// with the built-in `view` ClusterRole.
    fn review(&mut self, req: &Request) -> Response {
        let mut review: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let spec = &review["spec"];
        let user = spec["user"].as_str().unwrap_or_default().to_string();
        let attrs = &spec["resourceAttributes"];
        let field = |k: &str| attrs[k].as_str().unwrap_or_default().to_string();
        let namespace = Some(field("namespace")).filter(|n| !n.is_empty());
        let allowed = self.allowed(&user, &field("verb"), &field("group"), &field("resource"), namespace.as_deref());
        review["status"] = json!({"allowed": allowed});
        review["kind"] = json!("SubjectAccessReview");
        review["apiVersion"] = json!("authorization.k8s.io/v1");
        Response::json(201, &review)
    }

    fn allowed(&self, user: &str, verb: &str, group: &str, resource: &str, namespace: Option<&str>) -> bool {
        let Some(sa) = user.strip_prefix("system:serviceaccount:") else { return false };
        let (sa_ns, sa_name) = sa.split_once(':').unwrap_or(("", ""));
        let mut bindings: Vec<&Value> =
            self.objects.iter().filter(|(k, _)| k.contains("/clusterrolebindings/")).map(|(_, v)| v).collect();
        if let Some(ns) = namespace {
            let prefix = format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/");
            bindings.extend(self.objects.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(_, v)| v));
        }
        bindings
            .into_iter()
            .filter(|b| {
                b["subjects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| s["kind"] == "ServiceAccount" && s["name"] == sa_name && s["namespace"] == sa_ns)
            })
            .flat_map(|b| self.rules(&b["roleRef"], b["metadata"]["namespace"].as_str()))
            .any(|rule| {
                let has = |field: &str, want: &str| {
                    rule[field].as_array().into_iter().flatten().any(|v| v == want || v == "*")
                };
                has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
            })
    }

    fn rules(&self, role_ref: &Value, binding_ns: Option<&str>) -> Vec<Value> {
        let name = role_ref["name"].as_str().unwrap_or_default();
        if role_ref["kind"] == "ClusterRole" && name == "view" {
            let read = json!(["get", "list", "watch"]);
            return vec![
                json!({"apiGroups": [""], "resources": ["pods", "pods/log", "services", "endpoints", "configmaps", "events", "namespaces", "persistentvolumeclaims", "replicationcontrollers", "serviceaccounts", "resourcequotas", "limitranges"], "verbs": read}),
                json!({"apiGroups": ["apps"], "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"], "verbs": read}),
                json!({"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": read}),
                json!({"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"], "verbs": read}),
            ];
        }
        let key = match (role_ref["kind"].as_str(), binding_ns) {
            (Some("Role"), Some(ns)) => format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/{name}"),
            _ => format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"),
        };
        self.objects.get(&key).and_then(|r| r["rules"].as_array().cloned()).unwrap_or_default()
    }
}

impl FakeKube {
    pub fn start() -> FakeKube {
        let store = Arc::new(Mutex::new(Store { seed: std::process::id() as u64 ^ 0x5eed, ..Default::default() }));
        let handle = store.clone();
        let server = Server::start(Arc::new(move |req: Request| handle.lock().unwrap().handle(&req)));
        let mut kubeconfig = tempfile::NamedTempFile::new().unwrap();
        use std::io::Write;
        write!(
            kubeconfig,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: admin\ncurrent-context: fake\nusers:\n- name: admin\n  user:\n    token: fake-admin-token\n",
            server.url()
        )
        .unwrap();
        FakeKube { server, store, kubeconfig }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn kubeconfig_path(&self) -> &std::path::Path {
        self.kubeconfig.path()
    }

    pub fn get(&self, key: &str) -> Option<Value> {
        self.store.lock().unwrap().objects.get(key).cloned()
    }

    pub fn put(&self, key: &str, value: Value) {
        let mut s = self.store.lock().unwrap();
        let rv = s.next_rv();
        let mut value = value;
        value["metadata"]["resourceVersion"] = json!(rv);
        s.objects.insert(key.to_string(), value);
    }

    pub fn keys(&self) -> Vec<String> {
        self.store.lock().unwrap().objects.keys().cloned().collect()
    }

    pub fn snapshot(&self) -> BTreeMap<String, Value> {
        self.store.lock().unwrap().objects.clone()
    }

    pub fn requests(&self) -> Vec<String> {
        self.store.lock().unwrap().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.store.lock().unwrap().requests.clear();
    }

    pub fn set_rollout(&self, rollout: Rollout) {
        self.store.lock().unwrap().rollout = Some(rollout);
    }

    pub fn set_logs(&self, pod_key: &str, logs: &str) {
        self.store.lock().unwrap().logs.insert(pod_key.to_string(), logs.to_string());
    }

    /// A single node with an InternalIP.
    pub fn add_node(&self, name: &str, internal_ip: &str) {
        self.put(
            &format!("/api/v1/nodes/{name}"),
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": {"addresses": [{"type": "InternalIP", "address": internal_ip}, {"type": "Hostname", "address": name}]}}),
        );
    }

    /// A pod of the default release's Deployment, waiting in `reason` after `restarts` restarts.
    pub fn add_pod(&self, ns: &str, name: &str, image: &str, reason: &str, restarts: i64, logs: &str) {
        let release = "kubernetes-mcp-server";
        let key = format!("/api/v1/namespaces/{ns}/pods/{name}");
        self.put(
            &key,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app.kubernetes.io/name": "kubernetes-mcp-server", "app.kubernetes.io/instance": release}},
                   "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                              "containerStatuses": [{"name": "kubernetes-mcp-server", "image": image, "imageID": "", "ready": false, "restartCount": restarts,
                                                     "state": {"waiting": {"reason": reason, "message": format!("{reason} for the test")}}}]}}),
        );
        self.set_logs(&key, logs);
    }

    pub fn add_event(&self, ns: &str, pod: &str, reason: &str, message: &str) {
        let name = format!("{pod}.{}", self.keys().len());
        self.put(
            &format!("/api/v1/namespaces/{ns}/events/{name}"),
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns}, "involvedObject": {"kind": "Pod", "name": pod, "namespace": ns}, "reason": reason, "message": message, "type": "Warning"}),
        );
    }

    /// The FAKE `helm` CLI, backed by this store.
    pub fn helm(&self, call: &Call) -> Outcome {
        let mut s = self.store.lock().unwrap();
        fake_helm(&mut s, call)
    }
}

fn fullname(release: &str) -> String {
    if release.contains("kubernetes-mcp-server") {
        release.to_string()
    } else {
        format!("{release}-kubernetes-mcp-server")
    }
}

fn release_secrets(s: &Store, ns: &str, release: &str) -> Vec<Value> {
    let prefix = format!("/api/v1/namespaces/{ns}/secrets/");
    let mut v: Vec<Value> = s
        .objects
        .iter()
        .filter(|(k, v)| {
            k.starts_with(&prefix)
                && v["metadata"]["labels"]["owner"] == "helm"
                && v["metadata"]["labels"]["name"] == release
        })
        .map(|(_, v)| v.clone())
        .collect();
    v.sort_by_key(|x| x["metadata"]["labels"]["version"].as_str().and_then(|n| n.parse::<u32>().ok()).unwrap_or(0));
    v
}

fn target(path: &str) -> Target {
    Target::parse(path).unwrap()
}

fn fake_helm(s: &mut Store, call: &Call) -> Outcome {
    let ns = call.flag("-n").or(call.flag("--namespace")).unwrap_or("default").to_string();
    match call.args.first().map(String::as_str) {
        Some("version") => Outcome::ok("v3.19.2+gfake\n"),
        Some("status") => {
            let release = &call.args[1];
            match release_secrets(s, &ns, release).last() {
                Some(secret) => {
                    let rev: u32 = secret["metadata"]["labels"]["version"].as_str().unwrap().parse().unwrap();
                    Outcome::ok(serde_json::to_string(&json!({"name": release, "namespace": ns, "version": rev, "info": {"status": "deployed"}, "chart": {"metadata": {"name": "kubernetes-mcp-server", "version": secret["data"]["chartVersion"]}}})).unwrap())
                }
                None => Outcome::fail(1, "Error: release: not found\n"),
            }
        }
        Some("upgrade") if call.args.get(1).map(String::as_str) == Some("--install") => {
            let (release, chart) = (call.args[2].clone(), call.args[3].clone());
            let version = call.flag("--version").unwrap_or("latest").to_string();
            let file = call.flag("-f").or(call.flag("--values")).unwrap_or_default();
            let Some(text) = call.files.get(file) else {
                return Outcome::fail(1, format!("Error: open {file}: no such file or directory\n"));
            };
            let values: Value = match serde_norway::from_str(text) {
                Ok(v) => v,
                Err(e) => return Outcome::fail(1, format!("Error: failed to parse {file}: {e}\n")),
            };
            if !s.namespace_exists(&ns) {
                return Outcome::fail(1, format!("Error: create: failed to create: namespaces \"{ns}\" not found\n"));
            }
            match render_chart(s, &ns, &release, &values) {
                Ok(()) => {}
                Err(r) => {
                    return Outcome::fail(1, format!("Error: UPGRADE FAILED: {}\n", String::from_utf8_lossy(&r.body)))
                }
            }
            let rev = release_secrets(s, &ns, &release).len() + 1;
            let secret_name = format!("sh.helm.release.v1.{release}.v{rev}");
            let secret = json!({"type": "helm.sh/release.v1", "metadata": {"labels": {"owner": "helm", "name": release, "status": "deployed", "version": rev.to_string()}}, "data": {"chart": chart, "chartVersion": version}});
            s.store(&target(&format!("/api/v1/namespaces/{ns}/secrets")), &secret_name, secret, Some("helm"), "Update")
                .unwrap();
            Outcome::ok(format!("Release \"{release}\" has been upgraded. Happy Helming!\nREVISION: {rev}\n"))
        }
        Some("uninstall") => {
            let release = call.args[1].clone();
            let secrets = release_secrets(s, &ns, &release);
            if secrets.is_empty() {
                return Outcome::fail(
                    1,
                    format!("Error: uninstall: Release not loaded: {release}: release: not found\n"),
                );
            }
            let name = fullname(&release);
            for key in [
                format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
                format!("/api/v1/namespaces/{ns}/services/{name}"),
                format!("/api/v1/namespaces/{ns}/configmaps/{name}"),
                format!("/api/v1/namespaces/{ns}/serviceaccounts/{name}"),
                format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/{name}"),
                format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/{name}"),
            ] {
                s.objects.remove(&key);
            }
            let pods = format!("/api/v1/namespaces/{ns}/pods/");
            s.objects.retain(|k, v| {
                !(k.starts_with(&pods) && v["metadata"]["labels"]["app.kubernetes.io/instance"] == release.as_str())
            });
            for secret in secrets {
                s.objects.remove(&format!(
                    "/api/v1/namespaces/{ns}/secrets/{}",
                    secret["metadata"]["name"].as_str().unwrap()
                ));
            }
            Outcome::ok(format!("release \"{release}\" uninstalled\n"))
        }
        _ => Outcome::fail(1, format!("fake helm: unexpected arguments {:?}\n", call.args)),
    }
}

/// What the upstream chart renders for these values (the parts the xtask depends on).
fn render_chart(s: &mut Store, ns: &str, release: &str, values: &Value) -> Result<(), Response> {
    let name = fullname(release);
    let labels = json!({"app.kubernetes.io/name": "kubernetes-mcp-server", "app.kubernetes.io/instance": release, "app.kubernetes.io/managed-by": "Helm"});
    let selector = json!({"app.kubernetes.io/name": "kubernetes-mcp-server", "app.kubernetes.io/instance": release});
    let port = values["service"]["port"].as_i64().unwrap_or(8080);
    let image = &values["image"];
    let version = image["version"].as_str().unwrap_or("latest");
    let image_ref = if version.starts_with("sha256:") {
        format!(
            "{}/{}@{version}",
            image["registry"].as_str().unwrap_or("quay.io"),
            image["repository"].as_str().unwrap_or("")
        )
    } else {
        format!(
            "{}/{}:{version}",
            image["registry"].as_str().unwrap_or("quay.io"),
            image["repository"].as_str().unwrap_or("")
        )
    };
    let sa_create = values["serviceAccount"]["create"].as_bool().unwrap_or(true);
    let sa_name = match values["serviceAccount"]["name"].as_str().filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None if sa_create => name.clone(),
        None => "default".to_string(),
    };
    let mut args = vec![json!("--config"), json!("/etc/kubernetes-mcp-server/config.toml")];
    args.extend(values["extraArgs"].as_array().cloned().unwrap_or_default());
    let config = format!("port = \"{port}\"\n");
    s.store(
        &target(&format!("/api/v1/namespaces/{ns}/configmaps")),
        &name,
        json!({"metadata": {"labels": labels}, "data": {"config.toml": config}}),
        Some("helm"),
        "Update",
    )?;
    if sa_create {
        s.store(
            &target(&format!("/api/v1/namespaces/{ns}/serviceaccounts")),
            &sa_name,
            json!({"metadata": {"labels": labels}}),
            Some("helm"),
            "Update",
        )?;
    }
    if values["rbac"]["create"].as_bool().unwrap_or(true) {
        let rules = json!([{"apiGroups": [""], "resources": ["pods", "secrets", "configmaps"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]);
        s.store(
            &target(&format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles")),
            &name,
            json!({"metadata": {"labels": labels}, "rules": rules}),
            Some("helm"),
            "Update",
        )?;
        s.store(&target(&format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings")), &name, json!({"metadata": {"labels": labels}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}, "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}]}), Some("helm"), "Update")?;
    }
    let service_key = format!("/api/v1/namespaces/{ns}/services/{name}");
    let mut ports = json!([{"name": "http", "port": port, "targetPort": values["service"]["targetPort"].as_str().unwrap_or("http"), "protocol": "TCP"}]);
    if let Some(old) = s.objects.get(&service_key) {
        // helm's three-way merge leaves a live nodePort alone
        if old["spec"]["ports"][0]["port"].as_i64() == Some(port) {
            ports[0]["nodePort"] = old["spec"]["ports"][0]["nodePort"].clone();
        }
    }
    s.store(&target(&format!("/api/v1/namespaces/{ns}/services")), &name, json!({"metadata": {"labels": labels}, "spec": {"type": values["service"]["type"].as_str().unwrap_or("ClusterIP"), "ports": ports, "selector": selector}}), Some("helm"), "Update")?;
    let probe = json!({"httpGet": {"path": "/healthz", "port": "http"}});
    let deployment = json!({
        "metadata": {"labels": labels},
        "spec": {
            "replicas": values["replicaCount"].as_i64().unwrap_or(1),
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": sa_name,
                    "containers": [{
                        "name": "kubernetes-mcp-server",
                        "image": image_ref,
                        "imagePullPolicy": image["pullPolicy"].as_str().unwrap_or("IfNotPresent"),
                        "args": args,
                        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
                        "livenessProbe": probe, "readinessProbe": probe,
                    }],
                },
            },
        },
    });
    s.store(&target(&format!("/apis/apps/v1/namespaces/{ns}/deployments")), &name, deployment, Some("helm"), "Update")?;
    Ok(())
}
