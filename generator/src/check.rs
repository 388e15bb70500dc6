//! Step 5: check every rendered object before a byte is written.
//!
//! Each document is parsed into its k8s-openapi type with unknown fields rejected and a
//! round trip compared (so a typo in a template, a wrong type or a dropped field fails here,
//! not in the cluster). Then the references between objects are resolved: every ConfigMap,
//! key, PVC and port name a pod uses must be rendered, every Service must select a pod, no
//! two objects share a name. Last, pods get a checksum of the ConfigMaps they mount, so a
//! config change rolls exactly the pods that read it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, PodSpec, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::render::Rendered;

/// The annotation that rolls a pod when a ConfigMap it reads changes.
pub const CHECKSUM_ANNOTATION: &str = "velodrome.dev/config-checksum";

/// A rendered object that failed its checks: a defect in a template, not in the config.
#[derive(Debug, Error)]
#[error("{template}: {object}: {message}")]
pub struct CheckError {
    /// The template that produced the object.
    pub template: String,
    /// `Kind/name`, or the document number when it has neither.
    pub object: String,
    /// What is wrong.
    pub message: String,
}

/// The kinds velogen renders, typed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Object {
    /// The namespace.
    Namespace(Namespace),
    /// Config files.
    ConfigMap(ConfigMap),
    /// Volumes.
    PersistentVolumeClaim(PersistentVolumeClaim),
    /// Network names.
    Service(Service),
    /// Workloads.
    Deployment(Box<Deployment>),
    /// One-off work (the MySQL grants).
    Job(Box<Job>),
}

/// One checked object with the metadata selection and diffing need.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Kubernetes kind.
    pub kind: &'static str,
    /// Object name.
    pub name: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// metadata.labels.
    pub labels: BTreeMap<String, String>,
    /// The typed object.
    pub object: Object,
}

impl Checked {
    /// `Kind/namespace/name`: how diff matches objects.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    /// The object as YAML, in k8s-openapi's field order (the canonical form).
    pub fn to_yaml(&self) -> Result<String, serde_saphyr::SerializeError> {
        serde_saphyr::to_string(&self.object)
    }
}

/// Checks every rendered stream and returns the objects in render order.
pub fn check(rendered: &[Rendered]) -> Result<Vec<Checked>, Vec<CheckError>> {
    // Parsing and type-checking each stream is independent work: spread it over the cores
    // (the results are put back in render order, so output stays deterministic).
    let parts: Vec<StreamResult> = crate::parallel_map(rendered, check_stream);
    let mut errors = Vec::new();
    let mut objects = Vec::new();
    for (mut stream_objects, mut stream_errors) in parts {
        objects.append(&mut stream_objects);
        errors.append(&mut stream_errors);
    }
    errors.extend(check_references(&objects));
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut objects: Vec<Checked> = objects.into_iter().map(|(_, o)| o).collect();
    add_checksums(&mut objects);
    Ok(objects)
}

/// The objects of one rendered stream (with the template that made each) and its errors.
type StreamResult = (Vec<(&'static str, Checked)>, Vec<CheckError>);

/// Parses and type-checks one template's output.
fn check_stream(stream: &Rendered) -> StreamResult {
    let mut errors = Vec::new();
    let mut objects = Vec::new();
    let docs: Vec<Value> = match serde_saphyr::from_multiple(&stream.text) {
        Ok(docs) => docs,
        Err(err) => {
            errors.push(CheckError {
                template: stream.template.to_owned(),
                object: "output".into(),
                message: format!("not valid YAML: {}", err.without_snippet()),
            });
            return (objects, errors);
        }
    };
    for (index, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        match parse_object(&doc) {
            Ok(obj) => {
                if let Err(message) = check_labels(&obj, stream.project.as_deref()) {
                    errors.push(CheckError {
                        template: stream.template.to_owned(),
                        object: format!("{}/{}", obj.kind, obj.name),
                        message,
                    });
                }
                objects.push((stream.template, obj));
            }
            Err(message) => {
                let object = match (
                    doc.get("kind").and_then(Value::as_str),
                    doc.pointer("/metadata/name").and_then(Value::as_str),
                ) {
                    (Some(kind), Some(name)) => format!("{kind}/{name}"),
                    _ => format!("document {}", index + 1),
                };
                errors.push(CheckError {
                    template: stream.template.to_owned(),
                    object,
                    message,
                });
            }
        }
    }
    (objects, errors)
}

/// Deserializes with unknown fields reported, then requires an exact round trip.
fn strict<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<T, String> {
    let mut unknown = Vec::new();
    let typed: T = serde_ignored::deserialize(doc.clone(), |path| {
        unknown.push(path.to_string().replace("?.", ""));
    })
    .map_err(|e| format!("does not match its Kubernetes type: {e}"))?;
    if !unknown.is_empty() {
        return Err(format!("unknown field(s): {}", unknown.join(", ")));
    }
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if let Some(path) = first_difference(doc, &back) {
        return Err(format!(
            "field {path} does not survive the Kubernetes type (wrong type, or an empty value the API drops)"
        ));
    }
    Ok(typed)
}

/// The path of the first place two values differ. The path is built only on the way out of
/// a difference, so equal trees cost no allocation.
fn first_difference(a: &Value, b: &Value) -> Option<String> {
    fn walk(a: &Value, b: &Value) -> Option<Vec<String>> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                if let Some(key) = y.keys().find(|k| !x.contains_key(*k)) {
                    return Some(vec![key.clone()]);
                }
                for (key, l) in x {
                    let Some(r) = y.get(key) else {
                        return Some(vec![key.clone()]);
                    };
                    if let Some(mut path) = walk(l, r) {
                        path.push(key.clone());
                        return Some(path);
                    }
                }
                None
            }
            (Value::Array(x), Value::Array(y)) => {
                if x.len() != y.len() {
                    return Some(Vec::new());
                }
                x.iter().zip(y).enumerate().find_map(|(i, (l, r))| {
                    walk(l, r).map(|mut path| {
                        path.push(format!("[{i}]"));
                        path
                    })
                })
            }
            (Value::Number(x), Value::Number(y)) => (x.as_f64() != y.as_f64()).then(Vec::new),
            _ => (a != b).then(Vec::new),
        }
    }
    walk(a, b).map(|path| {
        let mut out = String::new();
        for segment in path.iter().rev() {
            if !segment.starts_with('[') {
                out.push('.');
            }
            out.push_str(segment);
        }
        out
    })
}

/// metadata.labels of a document as written (string values only).
pub fn labels_of(doc: &Value) -> BTreeMap<String, String> {
    doc.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses a document from an old render into its typed form, without the strict checks (an
/// old file may come from an older velogen). `None` for kinds velogen does not render.
pub fn parse_lenient(doc: &Value) -> Option<Checked> {
    let object = match doc.get("kind")?.as_str()? {
        "Namespace" => Object::Namespace(serde_json::from_value(doc.clone()).ok()?),
        "ConfigMap" => Object::ConfigMap(serde_json::from_value(doc.clone()).ok()?),
        "PersistentVolumeClaim" => {
            Object::PersistentVolumeClaim(serde_json::from_value(doc.clone()).ok()?)
        }
        "Service" => Object::Service(serde_json::from_value(doc.clone()).ok()?),
        "Deployment" => Object::Deployment(Box::new(serde_json::from_value(doc.clone()).ok()?)),
        "Job" => Object::Job(Box::new(serde_json::from_value(doc.clone()).ok()?)),
        _ => return None,
    };
    let kind = match &object {
        Object::Namespace(_) => "Namespace",
        Object::ConfigMap(_) => "ConfigMap",
        Object::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
        Object::Service(_) => "Service",
        Object::Deployment(_) => "Deployment",
        Object::Job(_) => "Job",
    };
    Some(Checked {
        kind,
        name: doc.pointer("/metadata/name")?.as_str()?.to_owned(),
        namespace: doc
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        labels: labels_of(doc),
        object,
    })
}

fn parse_object(doc: &Value) -> Result<Checked, String> {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("has no `kind`")?;
    let (kind, object): (&'static str, Object) = match kind {
        "Namespace" => ("Namespace", Object::Namespace(strict(doc)?)),
        "ConfigMap" => ("ConfigMap", Object::ConfigMap(strict(doc)?)),
        "PersistentVolumeClaim" => (
            "PersistentVolumeClaim",
            Object::PersistentVolumeClaim(strict(doc)?),
        ),
        "Service" => ("Service", Object::Service(strict(doc)?)),
        "Deployment" => ("Deployment", Object::Deployment(Box::new(strict(doc)?))),
        "Job" => ("Job", Object::Job(Box::new(strict(doc)?))),
        other => return Err(format!("kind {other:?} is not one velogen renders")),
    };
    let meta = match &object {
        Object::Namespace(o) => &o.metadata,
        Object::ConfigMap(o) => &o.metadata,
        Object::PersistentVolumeClaim(o) => &o.metadata,
        Object::Service(o) => &o.metadata,
        Object::Deployment(o) => &o.metadata,
        Object::Job(o) => &o.metadata,
    };
    let name = meta.name.clone().ok_or("has no metadata.name")?;
    if let Some(problem) = velodrome_model::names::dns_label_problem(&name)
        && !(kind == "ConfigMap" || kind == "PersistentVolumeClaim")
    {
        return Err(format!("name {problem}"));
    }
    let namespace = meta.namespace.clone().unwrap_or_default();
    if kind != "Namespace" && namespace.is_empty() {
        return Err("has no metadata.namespace".into());
    }
    Ok(Checked {
        kind,
        name,
        namespace,
        labels: meta.labels.clone().unwrap_or_default(),
        object,
    })
}

fn check_labels(obj: &Checked, project: Option<&str>) -> Result<(), String> {
    for key in [
        "app",
        "app.kubernetes.io/managed-by",
        "app.kubernetes.io/part-of",
    ] {
        if !obj.labels.contains_key(key) {
            return Err(format!("missing label {key:?}"));
        }
    }
    if let Some(p) = project
        && obj.labels.get("project").map(String::as_str) != Some(p)
    {
        return Err(format!("label project must be {p:?}"));
    }
    for (key, value) in &obj.labels {
        if value.len() > 63 {
            return Err(format!("label {key} is longer than 63 characters"));
        }
    }
    Ok(())
}

fn pod_labels(d: &Deployment) -> BTreeMap<String, String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

fn pod_spec(d: &Deployment) -> Option<&PodSpec> {
    d.spec.as_ref().and_then(|s| s.template.spec.as_ref())
}

/// ConfigMaps a pod reads (volumes, env references, envFrom), sorted.
fn mounted_config_maps(spec: &PodSpec) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for v in spec.volumes.iter().flatten() {
        if let Some(cm) = &v.config_map {
            out.insert(cm.name.clone());
        }
    }
    for c in &spec.containers {
        for e in c.env.iter().flatten() {
            if let Some(r) = e
                .value_from
                .as_ref()
                .and_then(|f| f.config_map_key_ref.as_ref())
            {
                out.insert(r.name.clone());
            }
        }
        for f in c.env_from.iter().flatten() {
            if let Some(r) = &f.config_map_ref {
                out.insert(r.name.clone());
            }
        }
    }
    out
}

fn check_references(objects: &[(&'static str, Checked)]) -> Vec<CheckError> {
    let mut errors = Vec::new();
    let mut ids = BTreeSet::new();
    let mut config_maps: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut claims = BTreeSet::new();
    for (_, o) in objects {
        match &o.object {
            Object::ConfigMap(cm) => {
                config_maps.insert(
                    (o.namespace.clone(), o.name.clone()),
                    cm.data.iter().flatten().map(|(k, _)| k.clone()).collect(),
                );
            }
            Object::PersistentVolumeClaim(_) => {
                claims.insert((o.namespace.clone(), o.name.clone()));
            }
            _ => {}
        }
    }
    for (template, o) in objects {
        let mut fail = |message: String| {
            errors.push(CheckError {
                template: (*template).to_owned(),
                object: format!("{}/{}", o.kind, o.name),
                message,
            });
        };
        if !ids.insert(o.id()) {
            fail("another object has the same kind, namespace and name".into());
        }
        match &o.object {
            Object::Deployment(d) => {
                let labels = pod_labels(d);
                if let Some(sel) = d
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.match_labels.as_ref())
                {
                    if sel.is_empty() {
                        fail("spec.selector.matchLabels is empty".into());
                    }
                    for (k, v) in sel {
                        if labels.get(k) != Some(v) {
                            fail(format!(
                                "selector {k}={v} does not match the pod template labels"
                            ));
                        }
                    }
                } else {
                    fail("has no spec.selector.matchLabels".into());
                }
                let Some(spec) = pod_spec(d) else {
                    fail("has no pod spec".into());
                    continue;
                };
                check_pod(spec, &o.namespace, &config_maps, &claims, true, &mut fail);
            }
            Object::Job(j) => match j.spec.as_ref().and_then(|s| s.template.spec.as_ref()) {
                Some(spec) => {
                    check_pod(spec, &o.namespace, &config_maps, &claims, false, &mut fail)
                }
                None => fail("has no pod spec".into()),
            },
            Object::Service(s) => {
                let Some(selector) = s.spec.as_ref().and_then(|sp| sp.selector.as_ref()) else {
                    fail("has no selector".into());
                    continue;
                };
                let targets: Vec<&Deployment> = objects
                    .iter()
                    .filter_map(|(_, other)| match &other.object {
                        Object::Deployment(d) if other.namespace == o.namespace => {
                            let labels = pod_labels(d);
                            selector
                                .iter()
                                .all(|(k, v)| labels.get(k) == Some(v))
                                .then_some(d.as_ref())
                        }
                        _ => None,
                    })
                    .collect();
                if targets.is_empty() {
                    fail("selects no rendered pod".into());
                }
                for port in s
                    .spec
                    .as_ref()
                    .and_then(|sp| sp.ports.as_ref())
                    .into_iter()
                    .flatten()
                {
                    if let Some(IntOrString::String(name)) = &port.target_port {
                        let declared = targets.iter().any(|d| {
                            pod_spec(d).is_some_and(|spec| {
                                spec.containers.iter().any(|c| {
                                    c.ports
                                        .iter()
                                        .flatten()
                                        .any(|p| p.name.as_deref() == Some(name))
                                })
                            })
                        });
                        if !declared {
                            fail(format!(
                                "targetPort {name} is not a port of the selected pods"
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    errors
}

/// What every pod must get right, whatever runs it: ConfigMaps, keys and claims it uses
/// are rendered, every mount names a volume of the pod, every container requests
/// resources; `servers` (Deployments) also need a readiness and a liveness probe on a
/// declared port. One-off pods (Jobs) have no probes.
fn check_pod(
    spec: &PodSpec,
    namespace: &str,
    config_maps: &BTreeMap<(String, String), BTreeSet<String>>,
    claims: &BTreeSet<(String, String)>,
    servers: bool,
    fail: &mut dyn FnMut(String),
) {
    let key = |name: &str| (namespace.to_owned(), name.to_owned());
    for v in spec.volumes.iter().flatten() {
        if let Some(cm) = &v.config_map {
            match config_maps.get(&key(&cm.name)) {
                None => fail(format!(
                    "volume {} mounts ConfigMap {} which is not rendered",
                    v.name, cm.name
                )),
                Some(keys) => {
                    for item in cm.items.iter().flatten() {
                        if !keys.contains(&item.key) {
                            fail(format!(
                                "volume {} projects key {} that ConfigMap {} does not have",
                                v.name, item.key, cm.name
                            ));
                        }
                    }
                }
            }
        }
        if let Some(pvc) = &v.persistent_volume_claim
            && !claims.contains(&key(&pvc.claim_name))
        {
            fail(format!(
                "volume {} uses PersistentVolumeClaim {} which is not rendered",
                v.name, pvc.claim_name
            ));
        }
    }
    let volume_names: BTreeSet<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    for c in &spec.containers {
        let ports: BTreeSet<&str> = c
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.name.as_deref())
            .collect();
        for m in c.volume_mounts.iter().flatten() {
            if !volume_names.contains(m.name.as_str()) {
                fail(format!(
                    "container {} mounts volume {} which the pod does not define",
                    c.name, m.name
                ));
            }
        }
        for e in c.env.iter().flatten() {
            if let Some(r) = e
                .value_from
                .as_ref()
                .and_then(|f| f.config_map_key_ref.as_ref())
                && !config_maps
                    .get(&key(&r.name))
                    .is_some_and(|k| k.contains(&r.key))
            {
                fail(format!(
                    "env {} reads key {} of ConfigMap {}, which is not rendered",
                    e.name, r.key, r.name
                ));
            }
        }
        let probes = [
            ("readinessProbe", &c.readiness_probe),
            ("livenessProbe", &c.liveness_probe),
        ];
        for (what, probe) in probes.into_iter().filter(|_| servers) {
            let port = probe.as_ref().and_then(|p| {
                p.http_get
                    .as_ref()
                    .map(|h| h.port.clone())
                    .or_else(|| p.tcp_socket.as_ref().map(|t| t.port.clone()))
            });
            match port {
                None => fail(format!("container {} has no HTTP or TCP {what}", c.name)),
                Some(IntOrString::String(name)) if !ports.contains(name.as_str()) => fail(format!(
                    "container {} {what} uses port {name} which it does not declare",
                    c.name
                )),
                _ => {}
            }
        }
        if c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .is_none_or(|r| r.is_empty())
        {
            fail(format!("container {} has no resource requests", c.name));
        }
    }
}

/// Adds the checksum of every ConfigMap a pod reads to its pod template (Deployments and
/// Jobs).
fn add_checksums(objects: &mut [Checked]) {
    let data: BTreeMap<(String, String), String> = objects
        .iter()
        .filter_map(|o| match &o.object {
            Object::ConfigMap(cm) => {
                let data: BTreeMap<_, _> = cm.data.iter().flatten().collect();
                Some((
                    (o.namespace.clone(), o.name.clone()),
                    serde_json::to_string(&data).unwrap_or_default(),
                ))
            }
            _ => None,
        })
        .collect();
    for o in objects.iter_mut() {
        let namespace = o.namespace.clone();
        let template = match &mut o.object {
            Object::Deployment(d) => d.spec.as_mut().map(|s| &mut s.template),
            Object::Job(j) => j.spec.as_mut().map(|s| &mut s.template),
            _ => None,
        };
        let Some(template) = template else {
            continue;
        };
        let names = template
            .spec
            .as_ref()
            .map(mounted_config_maps)
            .unwrap_or_default();
        if names.is_empty() {
            continue;
        }
        let mut hasher = Sha256::new();
        for name in &names {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            if let Some(body) = data.get(&(namespace.clone(), name.clone())) {
                hasher.update(body.as_bytes());
            }
            hasher.update([0]);
        }
        let sum: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let meta = template.metadata.get_or_insert_with(Default::default);
        meta.annotations
            .get_or_insert_with(Default::default)
            .insert(CHECKSUM_ANNOTATION.to_owned(), sum);
    }
}
