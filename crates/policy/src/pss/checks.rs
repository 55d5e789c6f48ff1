//! The checks of the Pod Security Standards, one function each, with the
//! reasons and details the pod-security admission plugin prints. `minor` is
//! the Kubernetes minor version whose rules apply.

use serde_json::Value;

use super::Failure;

/// A check: the failure, if the pod fails it.
pub(super) type Check = fn(&Pod<'_>, u32) -> Option<Failure>;

/// The baseline checks, in PSA's order.
pub(super) const BASELINE: &[Check] = &[
    host_namespaces,
    privileged,
    capabilities_baseline,
    host_path_volumes,
    host_ports,
    app_armor,
    se_linux_options,
    proc_mount,
    seccomp_baseline,
    sysctls,
    windows_host_process,
    host_probes_and_lifecycle,
];

/// The checks restricted adds to baseline.
pub(super) const RESTRICTED: &[Check] = &[
    restricted_volumes,
    allow_privilege_escalation,
    run_as_non_root,
    run_as_user,
    seccomp_restricted,
    capabilities_restricted,
    proc_mount_restricted,
];

/// A pod's metadata and spec, with its containers of every kind.
pub(super) struct Pod<'a> {
    metadata: &'a Value,
    spec: &'a Value,
    containers: Vec<(&'a str, &'a Value)>,
}

impl<'a> Pod<'a> {
    pub(super) fn new(metadata: &'a Value, spec: &'a Value) -> Self {
        let containers = ["initContainers", "containers", "ephemeralContainers"]
            .iter()
            .flat_map(|field| {
                spec.get(*field)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .map(|c| (c.get("name").and_then(Value::as_str).unwrap_or(""), c))
            .collect();
        Pod {
            metadata,
            spec,
            containers,
        }
    }

    /// The pod-level security context field.
    /// `spec.os.name: windows` (from 1.25 some restricted checks exempt it).
    fn is_windows(&self) -> bool {
        at(self.spec, &["os", "name"]).and_then(Value::as_str) == Some("windows")
    }

    /// `spec.hostUsers: false` (from 1.35 some checks exempt it).
    fn in_user_namespace(&self) -> bool {
        self.spec.get("hostUsers").and_then(Value::as_bool) == Some(false)
    }

    fn pod_security(&self, path: &[&str]) -> Option<&'a Value> {
        at(self.spec.get("securityContext")?, path)
    }

    /// The names of the containers for which `bad` holds.
    fn containers_where(&self, bad: impl Fn(&'a Value) -> bool) -> Vec<&'a str> {
        self.containers
            .iter()
            .filter(|(_, c)| bad(c))
            .map(|(n, _)| *n)
            .collect()
    }
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

fn security<'a>(container: &'a Value, path: &[&str]) -> Option<&'a Value> {
    at(container.get("securityContext")?, path)
}

fn is_true(value: Option<&Value>) -> bool {
    value.and_then(Value::as_bool) == Some(true)
}

/// The singular or plural of a noun for `n` things, as PSA's `pluralize`.
fn pluralize(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// `container "a"` or `containers "a", "b"`.
fn containers_phrase(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    let noun = pluralize(names.len(), "container", "containers");
    format!("{noun} {}", quoted.join(", "))
}

fn failure(check: &'static str, reason: &str, detail: String) -> Option<Failure> {
    Some(Failure {
        check,
        reason: reason.to_string(),
        detail,
    })
}

/// The failure for the details found, if any (each detail one problem).
fn failure_if(check: &'static str, reason: &str, details: Vec<String>) -> Option<Failure> {
    if details.is_empty() {
        return None;
    }
    failure(check, reason, details.join("; "))
}

fn host_namespaces(pod: &Pod<'_>, _: u32) -> Option<Failure> {
    let set: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|f| is_true(pod.spec.get(**f)))
        .map(|f| format!("{f}=true"))
        .collect();
    if set.is_empty() {
        return None;
    }
    failure("hostNamespaces", "host namespaces", set.join(", "))
}

fn privileged(pod: &Pod<'_>, _: u32) -> Option<Failure> {
    let bad = pod.containers_where(|c| is_true(security(c, &["privileged"])));
    if bad.is_empty() {
        return None;
    }
    failure(
        "privileged",
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Each container's added capabilities outside `allowed`, as PSA lists them.
fn added_outside(pod: &Pod<'_>, allowed: &[&str]) -> Vec<String> {
    let mut details = Vec::new();
    for (name, container) in &pod.containers {
        let added: Vec<String> = security(container, &["capabilities", "add"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|cap| !allowed.contains(cap))
            .map(|cap| format!("{cap:?}"))
            .collect();
        if !added.is_empty() {
            details.push(format!(
                "container {name:?} must not include {} in securityContext.capabilities.add",
                added.join(", ")
            ));
        }
    }
    details
}

fn capabilities_baseline(pod: &Pod<'_>, _: u32) -> Option<Failure> {
    let details = added_outside(pod, BASELINE_CAPABILITIES);
    failure_if("capabilities_baseline", "non-default capabilities", details)
}

fn volumes<'a>(pod: &Pod<'a>) -> impl Iterator<Item = (&'a str, &'a Value)> {
    pod.spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| (v.get("name").and_then(Value::as_str).unwrap_or(""), v))
}

fn host_path_volumes(pod: &Pod<'_>, _: u32) -> Option<Failure> {
    let names: Vec<String> = volumes(pod)
        .filter(|(_, v)| v.get("hostPath").is_some())
        .map(|(n, _)| format!("{n:?}"))
        .collect();
    if names.is_empty() {
        return None;
    }
    let noun = pluralize(names.len(), "volume", "volumes");
    failure(
        "hostPathVolumes",
        "hostPath volumes",
        format!("{noun} {}", names.join(", ")),
    )
}

fn host_ports(pod: &Pod<'_>, _: u32) -> Option<Failure> {
    let mut details = Vec::new();
    for (name, container) in &pod.containers {
        let ports: Vec<String> = container
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("hostPort").and_then(Value::as_i64))
            .filter(|p| *p != 0)
            .map(|p| p.to_string())
            .collect();
        if !ports.is_empty() {
            let noun = pluralize(ports.len(), "hostPort", "hostPorts");
            details.push(format!(
                "container {name:?} uses {noun} {}",
                ports.join(", ")
            ));
        }
    }
    failure_if("hostPorts", "hostPort", details)
}

fn app_armor(pod: &Pod<'_>, _: u32) -> Option<Failure> {
    let allowed_type = |t: &str| matches!(t, "RuntimeDefault" | "Localhost");
    let mut bad = Vec::new();
    if let Some(kind) = pod
        .pod_security(&["appArmorProfile", "type"])
        .and_then(Value::as_str)
        && !allowed_type(kind)
    {
        bad.push(format!(
            "pod must not set securityContext.appArmorProfile.type to {kind:?}"
        ));
    }
    for (name, container) in &pod.containers {
        if let Some(kind) =
            security(container, &["appArmorProfile", "type"]).and_then(Value::as_str)
            && !allowed_type(kind)
        {
            bad.push(format!(
                "container {name:?} must not set securityContext.appArmorProfile.type to {kind:?}"
            ));
        }
    }
    if let Some(Value::Object(annotations)) = pod.metadata.get("annotations") {
        for (key, value) in annotations {
            let Some(container) =
                key.strip_prefix("container.apparmor.security.beta.kubernetes.io/")
            else {
                continue;
            };
            let value = value.as_str().unwrap_or_default();
            if value != "runtime/default" && !value.starts_with("localhost/") {
                bad.push(format!("{key}={value:?} (container {container:?})"));
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    let reason = pluralize(
        bad.len(),
        "forbidden AppArmor profile",
        "forbidden AppArmor profiles",
    );
    failure("appArmorProfile", reason, bad.join(", "))
}

fn se_linux_options(pod: &Pod<'_>, minor: u32) -> Option<Failure> {
    let mut allowed_types = vec!["", "container_t", "container_init_t", "container_kvm_t"];
    if minor >= 31 {
        allowed_types.push("container_engine_t");
    }
    let problems = |options: Option<&Value>| -> Vec<String> {
        let Some(options) = options else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(kind) = options.get("type").and_then(Value::as_str)
            && !allowed_types.contains(&kind)
        {
            out.push(format!("type {kind:?}"));
        }
        for field in ["user", "role"] {
            if let Some(value) = options.get(field).and_then(Value::as_str)
                && !value.is_empty()
            {
                out.push(format!("{field} {value:?}"));
            }
        }
        out
    };
    let mut details = Vec::new();
    let at_pod = problems(pod.pod_security(&["seLinuxOptions"]));
    if !at_pod.is_empty() {
        details.push(format!(
            "pod set forbidden securityContext.seLinuxOptions: {}",
            at_pod.join(", ")
        ));
    }
    for (name, container) in &pod.containers {
        let found = problems(security(container, &["seLinuxOptions"]));
        if !found.is_empty() {
            details.push(format!(
                "container {name:?} set forbidden securityContext.seLinuxOptions: {}",
                found.join(", ")
            ));
        }
    }
    failure_if("seLinuxOptions", "seLinuxOptions", details)
}

fn proc_mount(pod: &Pod<'_>, minor: u32) -> Option<Failure> {
    // From 1.35, a pod in a user namespace may use any procMount at baseline.
    if minor >= 35 && pod.in_user_namespace() {
        return None;
    }
    proc_mount_failure(pod, "procMount")
}

/// From 1.35, restricted takes back what baseline allows a pod in a user
/// namespace.
fn proc_mount_restricted(pod: &Pod<'_>, minor: u32) -> Option<Failure> {
    if minor < 35 || !pod.in_user_namespace() {
        return None;
    }
    proc_mount_failure(pod, "procMount_restricted")
}

fn proc_mount_failure(pod: &Pod<'_>, check: &'static str) -> Option<Failure> {
    let mut details = Vec::new();
    for (name, container) in &pod.containers {
        if let Some(mount) = security(container, &["procMount"]).and_then(Value::as_str)
            && mount != "Default"
        {
            details.push(format!(
                "container {name:?} must not set securityContext.procMount to {mount:?}"
            ));
        }
    }
    failure_if(check, "procMount", details)
}

fn seccomp_type(value: Option<&Value>) -> Option<&str> {
    value.and_then(|v| v.get("type")).and_then(Value::as_str)
}

/// Before 1.19, seccomp was set by the alpha annotations: they may name
/// only the runtime's default or a local profile.
fn seccomp_annotations(pod: &Pod<'_>) -> Option<Failure> {
    let annotations = pod.metadata.get("annotations");
    let valid =
        |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let mut forbidden: Vec<String> = Vec::new();
    let mut check = |key: String| {
        if let Some(value) = annotations
            .and_then(|a| a.get(&key))
            .and_then(Value::as_str)
            && !valid(value)
        {
            forbidden.push(format!("{key}={value:?}"));
        }
    };
    check("seccomp.security.alpha.kubernetes.io/pod".to_string());
    for (name, _) in &pod.containers {
        check(format!(
            "container.seccomp.security.alpha.kubernetes.io/{name}"
        ));
    }
    if forbidden.is_empty() {
        return None;
    }
    forbidden.sort();
    forbidden.dedup();
    let noun = pluralize(forbidden.len(), "annotation", "annotations");
    failure(
        "seccompProfile_baseline",
        "seccompProfile",
        format!("forbidden {noun} {}", forbidden.join(", ")),
    )
}

fn seccomp_baseline(pod: &Pod<'_>, minor: u32) -> Option<Failure> {
    if minor < 19 {
        return seccomp_annotations(pod);
    }
    let mut details = Vec::new();
    if seccomp_type(pod.pod_security(&["seccompProfile"])) == Some("Unconfined") {
        details.push(
            "pod must not set securityContext.seccompProfile.type to \"Unconfined\"".to_string(),
        );
    }
    let bad = pod
        .containers_where(|c| seccomp_type(security(c, &["seccompProfile"])) == Some("Unconfined"));
    if !bad.is_empty() {
        details.push(format!(
            "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
            containers_phrase(&bad)
        ));
    }
    failure_if("seccompProfile_baseline", "seccompProfile", details)
}

/// The sysctls baseline allows at a version.
fn allowed_sysctls(minor: u32) -> Vec<&'static str> {
    let mut allowed = vec![
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    ];
    if minor >= 27 {
        allowed.push("net.ipv4.ip_local_reserved_ports");
    }
    if minor >= 29 {
        allowed.extend([
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl",
            "net.ipv4.tcp_keepalive_probes",
        ]);
    }
    if minor >= 32 {
        allowed.extend(["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"]);
    }
    if minor >= 37 {
        allowed.extend([
            "net.ipv4.tcp_slow_start_after_idle",
            "net.ipv4.tcp_notsent_lowat",
        ]);
    }
    allowed
}

fn sysctls(pod: &Pod<'_>, minor: u32) -> Option<Failure> {
    let allowed = allowed_sysctls(minor);
    let forbidden: Vec<&str> = pod
        .pod_security(&["sysctls"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .filter(|name| !allowed.contains(name))
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    failure("sysctls", "forbidden sysctls", forbidden.join(", "))
}

fn windows_host_process(pod: &Pod<'_>, _: u32) -> Option<Failure> {
    let at_pod = is_true(pod.pod_security(&["windowsOptions", "hostProcess"]));
    let bad = pod.containers_where(|c| is_true(security(c, &["windowsOptions", "hostProcess"])));
    let who = match (at_pod, bad.is_empty()) {
        (false, true) => return None,
        (true, true) => "pod".to_string(),
        (false, false) => containers_phrase(&bad),
        (true, false) => format!("pod and {}", containers_phrase(&bad)),
    };
    failure(
        "windowsHostProcess",
        "hostProcess",
        format!("{who} must not set securityContext.windowsOptions.hostProcess=true"),
    )
}

fn host_probes_and_lifecycle(pod: &Pod<'_>, minor: u32) -> Option<Failure> {
    if minor < 34 {
        return None;
    }
    let mut details = Vec::new();
    for (name, container) in &pod.containers {
        let mut hosts = Vec::new();
        let handlers = ["livenessProbe", "readinessProbe", "startupProbe"]
            .iter()
            .filter_map(|p| container.get(*p))
            .chain(
                ["postStart", "preStop"]
                    .iter()
                    .filter_map(|h| at(container, &["lifecycle", h])),
            );
        for handler in handlers {
            for kind in ["httpGet", "tcpSocket"] {
                if let Some(host) = at(handler, &[kind, "host"]).and_then(Value::as_str)
                    && !host.is_empty()
                {
                    hosts.push(format!("{host:?}"));
                }
            }
        }
        if !hosts.is_empty() {
            details.push(format!(
                "container {name:?} uses probe or lifecycle host {}",
                hosts.join(", ")
            ));
        }
    }
    failure_if(
        "hostProbesAndHostLifecycle",
        "probe or lifecycle host",
        details,
    )
}

const RESTRICTED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn restricted_volumes(pod: &Pod<'_>, _: u32) -> Option<Failure> {
    let mut details = Vec::new();
    for (name, volume) in volumes(pod) {
        let Some(fields) = volume.as_object() else {
            continue;
        };
        for kind in fields.keys().filter(|k| *k != "name") {
            if !RESTRICTED_VOLUME_TYPES.contains(&kind.as_str()) {
                details.push(format!(
                    "volume {name:?} uses restricted volume type {kind:?}"
                ));
            }
        }
    }
    failure_if("restrictedVolumes", "restricted volume types", details)
}

fn allow_privilege_escalation(pod: &Pod<'_>, minor: u32) -> Option<Failure> {
    if minor < 8 || (minor >= 25 && pod.is_windows()) {
        return None;
    }
    let bad = pod.containers_where(|c| {
        security(c, &["allowPrivilegeEscalation"]).and_then(Value::as_bool) != Some(false)
    });
    if bad.is_empty() {
        return None;
    }
    failure(
        "allowPrivilegeEscalation",
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

fn run_as_non_root(pod: &Pod<'_>, minor: u32) -> Option<Failure> {
    if minor >= 35 && pod.in_user_namespace() {
        return None;
    }
    let pod_value = pod.pod_security(&["runAsNonRoot"]).and_then(Value::as_bool);
    let mut details = Vec::new();
    if pod_value == Some(false) {
        details.push("pod must not set securityContext.runAsNonRoot=false".to_string());
    }
    let explicit_false = pod.containers_where(|c| {
        security(c, &["runAsNonRoot"]).and_then(Value::as_bool) == Some(false)
    });
    if !explicit_false.is_empty() {
        details.push(format!(
            "{} must not set securityContext.runAsNonRoot=false",
            containers_phrase(&explicit_false)
        ));
    }
    if pod_value != Some(true) {
        let unset = pod.containers_where(|c| {
            security(c, &["runAsNonRoot"])
                .and_then(Value::as_bool)
                .is_none()
        });
        if !unset.is_empty() {
            details.push(format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&unset)
            ));
        }
    }
    failure_if("runAsNonRoot", "runAsNonRoot != true", details)
}

fn run_as_user(pod: &Pod<'_>, minor: u32) -> Option<Failure> {
    if minor < 23 || (minor >= 35 && pod.in_user_namespace()) {
        return None;
    }
    let mut details = Vec::new();
    if pod.pod_security(&["runAsUser"]).and_then(Value::as_i64) == Some(0) {
        details.push("pod must not set runAsUser=0".to_string());
    }
    let bad =
        pod.containers_where(|c| security(c, &["runAsUser"]).and_then(Value::as_i64) == Some(0));
    if !bad.is_empty() {
        details.push(format!(
            "{} must not set runAsUser=0",
            containers_phrase(&bad)
        ));
    }
    failure_if("runAsUser", "runAsUser=0", details)
}

fn seccomp_restricted(pod: &Pod<'_>, minor: u32) -> Option<Failure> {
    if minor < 19 || (minor >= 25 && pod.is_windows()) {
        return None;
    }
    let allowed = |t: Option<&str>| matches!(t, Some("RuntimeDefault" | "Localhost"));
    let pod_type = seccomp_type(pod.pod_security(&["seccompProfile"]));
    let mut details = Vec::new();
    if pod_type.is_some() && !allowed(pod_type) {
        details.push(format!(
            "pod must not set securityContext.seccompProfile.type to {:?}",
            pod_type.unwrap_or_default()
        ));
    }
    let explicit: Vec<&str> = pod.containers_where(|c| {
        let t = seccomp_type(security(c, &["seccompProfile"]));
        t.is_some() && !allowed(t)
    });
    if !explicit.is_empty() {
        details.push(format!(
            "{} must not set securityContext.seccompProfile.type to a value other than \"RuntimeDefault\" or \"Localhost\"",
            containers_phrase(&explicit)
        ));
    }
    if !allowed(pod_type) {
        let unset =
            pod.containers_where(|c| seccomp_type(security(c, &["seccompProfile"])).is_none());
        if !unset.is_empty() {
            details.push(format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&unset)
            ));
        }
    }
    failure_if("seccompProfile_restricted", "seccompProfile", details)
}

fn capabilities_restricted(pod: &Pod<'_>, minor: u32) -> Option<Failure> {
    if minor < 22 || (minor >= 25 && pod.is_windows()) {
        return None;
    }
    let mut details = Vec::new();
    let no_drop_all = pod.containers_where(|c| {
        !security(c, &["capabilities", "drop"])
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|cap| cap.as_str() == Some("ALL")))
    });
    if !no_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&no_drop_all)
        ));
    }
    details.extend(added_outside(pod, &["NET_BIND_SERVICE"]));
    failure_if(
        "capabilities_restricted",
        "unrestricted capabilities",
        details,
    )
}
