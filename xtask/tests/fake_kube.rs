//! The FAKE Kubernetes API server behaves like the real one where the xtask relies on it: these
//! tests speak raw HTTP to it, as kube-rs does.

mod support;

use serde_json::{json, Value};
use support::fake_kube::FakeKube;

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(kube: &FakeKube) -> Api {
        xtask::init_tls();
        Api { base: kube.url(), http: reqwest::Client::new() }
    }

    async fn send(&self, method: &str, path: &str, content_type: &str, body: Value) -> (u16, Value) {
        let req = self.http.request(method.parse().unwrap(), format!("{}{path}", self.base));
        let req = if body.is_null() { req } else { req.header("Content-Type", content_type).body(body.to_string()) };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn apply(&self, path: &str, manager: &str, body: Value) -> (u16, Value) {
        self.send("PATCH", &format!("{path}?fieldManager={manager}&force=true"), "application/apply-patch+yaml", body)
            .await
    }
}

const NS: &str = "/api/v1/namespaces/demo";
const CM: &str = "/api/v1/namespaces/demo/configmaps/c";

async fn namespace(api: &Api) {
    assert_eq!(
        api.apply(NS, "m", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})).await.0,
        201
    );
}

#[test]
fn status_codes_match_the_api_server() {
    let kube = FakeKube::start();
    let api = Api::new(&kube);
    support::block_on(async {
        let (code, body) = api.send("GET", CM, "", Value::Null).await;
        assert_eq!(
            (code, body["kind"].as_str(), body["reason"].as_str(), body["code"].as_u64()),
            (404, Some("Status"), Some("NotFound"), Some(404))
        );
        let create = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
        let (code, body) =
            api.send("POST", "/api/v1/namespaces/demo/configmaps", "application/json", create("c")).await;
        assert_eq!((code, body["message"].as_str()), (404, Some("namespaces \"demo\" not found")));
        namespace(&api).await;
        assert_eq!(
            api.send("POST", "/api/v1/namespaces/demo/configmaps", "application/json", create("c")).await.0,
            201
        );
        let (code, body) =
            api.send("POST", "/api/v1/namespaces/demo/configmaps", "application/json", create("c")).await;
        assert_eq!((code, body["reason"].as_str()), (409, Some("AlreadyExists")));
        let stale = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "1"}});
        let (code, body) = api.send("PUT", CM, "application/json", stale).await;
        assert_eq!((code, body["reason"].as_str()), (409, Some("Conflict")));
        let (code, _) = api.send("PATCH", CM, "application/apply-patch+yaml", json!({"data": {"a": "1"}})).await;
        assert_eq!(code, 400, "server-side apply needs a fieldManager");
        assert_eq!(api.send("DELETE", CM, "application/json", json!({})).await.0, 200);
        assert_eq!(api.send("DELETE", CM, "application/json", json!({})).await.0, 404);
    });
}

#[test]
fn server_side_apply_merges_by_field_manager() {
    let kube = FakeKube::start();
    let api = Api::new(&kube);
    support::block_on(async {
        namespace(&api).await;
        let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "demo"}, "data": data});
        let (code, first) = api.apply(CM, "a", cm(json!({"x": "1", "y": "2"}))).await;
        assert_eq!(code, 201);
        let (code, same) = api.apply(CM, "a", cm(json!({"x": "1", "y": "2"}))).await;
        assert_eq!(code, 200);
        assert_eq!(
            same["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"],
            "an unchanged apply changes nothing"
        );
        api.apply(CM, "b", cm(json!({"z": "3"}))).await;
        let (_, after) = api.apply(CM, "a", cm(json!({"x": "1"}))).await;
        assert_eq!(after["data"], json!({"x": "1", "z": "3"}), "a's dropped field goes, b's field stays");
        assert_ne!(after["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"]);
        let managers: Vec<&str> = after["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["manager"].as_str().unwrap())
            .collect();
        assert!(managers.contains(&"a") && managers.contains(&"b"), "{managers:?}");
        let (code, patched) = api
            .send(
                "PATCH",
                &format!("{CM}?fieldManager=c"),
                "application/merge-patch+json",
                json!({"data": {"z": null}}),
            )
            .await;
        assert_eq!((code, &patched["data"]), (200, &json!({"x": "1"})));
    });
}

#[test]
fn node_ports_are_allocated_in_range_and_never_shared() {
    let kube = FakeKube::start();
    let api = Api::new(&kube);
    support::block_on(async {
        namespace(&api).await;
        let svc = |name: &str, node_port: Option<u16>| {
            let mut port = json!({"name": "http", "port": 8080, "protocol": "TCP"});
            if let Some(p) = node_port {
                port["nodePort"] = json!(p);
            }
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"type": "NodePort", "ports": [port]}})
        };
        let (code, a) = api.send("POST", "/api/v1/namespaces/demo/services", "application/json", svc("a", None)).await;
        assert_eq!(code, 201);
        let port = a["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=32767).contains(&port));
        let (code, body) =
            api.send("POST", "/api/v1/namespaces/demo/services", "application/json", svc("b", Some(port as u16))).await;
        assert_eq!(code, 422);
        assert!(body["message"].as_str().unwrap().contains("provided port is already allocated"));
        let (code, body) =
            api.send("POST", "/api/v1/namespaces/demo/services", "application/json", svc("b", Some(8080))).await;
        assert_eq!(code, 422);
        assert!(body["message"].as_str().unwrap().contains("not in the valid range"));
        // An update that leaves nodePort out keeps the allocated one.
        let (_, kept) = api.send("PUT", "/api/v1/namespaces/demo/services/a", "application/json", svc("a", None)).await;
        assert_eq!(kept["spec"]["ports"][0]["nodePort"].as_u64(), Some(port));
    });
}

#[test]
fn namespaces_terminate_before_they_go() {
    let kube = FakeKube::start();
    let api = Api::new(&kube);
    support::block_on(async {
        namespace(&api).await;
        api.apply(
            CM,
            "m",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "demo"}}),
        )
        .await;
        assert_eq!(api.send("DELETE", NS, "application/json", json!({})).await.0, 200);
        let (code, ns) = api.send("GET", NS, "", Value::Null).await;
        assert_eq!((code, ns["status"]["phase"].as_str()), (200, Some("Terminating")));
        assert_eq!(api.send("GET", NS, "", Value::Null).await.0, 404);
        assert_eq!(api.send("GET", CM, "", Value::Null).await.0, 404, "its objects go with it");
    });
}
