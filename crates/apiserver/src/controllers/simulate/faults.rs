//! Failure injection, in the spirit of kwok's stages: an annotation on a
//! workload (or its pod template) makes its pods misbehave, so Degraded
//! apps, wave timeouts and rollbacks can be shown and tested without a real
//! cluster.
//!
//! `simulate.gitplane.dev/pods`:
//! - `crashloop`: containers start and exit with code 1 over and over
//!   (`CrashLoopBackOff`, the restart count grows every 10 s);
//! - `image-pull-error`: the image cannot be pulled (`ImagePullBackOff`,
//!   the pod stays Pending);
//! - `never-ready`: containers run but their readiness probe never passes;
//! - `ready-after=30s`: ready only 30 s after the pod started.
//!
//! A Deployment whose rollout makes no progress for its
//! `progressDeadlineSeconds` (default 600) reports `ProgressDeadlineExceeded`,
//! as the deployment controller does.

use serde_json::{Value, json};

/// The annotation that injects a fault.
pub const FAULT_ANNOTATION: &str = "simulate.gitplane.dev/pods";
/// Seconds between the restarts of a crash-looping container.
const RESTART_EVERY: i64 = 10;

/// What a workload's pods do wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Containers exit with code 1 and are restarted, again and again.
    CrashLoop,
    /// The image cannot be pulled.
    ImagePullError,
    /// Never ready.
    NeverReady,
    /// Ready this many seconds after starting.
    ReadyAfter(i64),
}

impl Fault {
    /// Reads the annotation's value; `None` for anything else.
    pub fn parse(text: &str) -> Option<Fault> {
        match text.trim() {
            "crashloop" => Some(Fault::CrashLoop),
            "image-pull-error" => Some(Fault::ImagePullError),
            "never-ready" => Some(Fault::NeverReady),
            other => {
                let seconds = other.strip_prefix("ready-after=")?;
                let seconds = seconds.strip_suffix('s').unwrap_or(seconds);
                seconds.parse().ok().map(Fault::ReadyAfter)
            }
        }
    }

    /// The fault an object (a workload, its template, or a pod) carries.
    pub fn of(object: &Value) -> Option<Fault> {
        annotation(object).and_then(Fault::parse)
    }
}

/// The annotation's value on an object or its pod template.
pub fn annotation(object: &Value) -> Option<&str> {
    let key = FAULT_ANNOTATION.replace('/', "~1");
    object
        .pointer(&format!("/metadata/annotations/{key}"))
        .or_else(|| object.pointer(&format!("/spec/template/metadata/annotations/{key}")))
        .and_then(Value::as_str)
}

/// How a pod's containers look `age` seconds after it started.
#[derive(Debug, Clone, PartialEq)]
pub struct PodView {
    /// `Running` or `Pending`.
    pub phase: &'static str,
    /// Whether it is ready.
    pub ready: bool,
    /// Whether its containers have started.
    pub started: bool,
    /// Each container's restarts.
    pub restarts: i64,
    /// Why it is not ready (condition reason), if it is not.
    pub waiting: Option<(&'static str, String)>,
}

/// The view of a pod with `fault` (or none), `age` seconds after it started.
pub fn view(fault: Option<Fault>, age: i64, image: &str) -> PodView {
    let running = |ready| PodView {
        phase: "Running",
        ready,
        started: true,
        restarts: 0,
        waiting: None,
    };
    match fault {
        None => running(true),
        Some(Fault::NeverReady) => running(false),
        Some(Fault::ReadyAfter(seconds)) => running(age >= seconds),
        Some(Fault::CrashLoop) => PodView {
            phase: "Running",
            ready: false,
            started: false,
            restarts: 1 + age.max(0) / RESTART_EVERY,
            waiting: Some((
                "CrashLoopBackOff",
                format!("back-off {RESTART_EVERY}s restarting failed container"),
            )),
        },
        Some(Fault::ImagePullError) => PodView {
            phase: "Pending",
            ready: false,
            started: false,
            restarts: 0,
            waiting: Some((
                "ImagePullBackOff",
                format!("Back-off pulling image \"{image}\""),
            )),
        },
    }
}

/// A container's status in a view.
pub fn container_status(
    view: &PodView,
    container: &Value,
    pod_uid: &str,
    started_at: &str,
) -> Value {
    let name = container.get("name").cloned().unwrap_or(Value::Null);
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let state = match &view.waiting {
        Some((reason, message)) => json!({"waiting": {"reason": reason, "message": message}}),
        None => json!({"running": {"startedAt": started_at}}),
    };
    let mut status = json!({
        "name": name, "image": image, "imageID": format!("simulated://{image}"),
        "containerID": format!("simulated://{pod_uid}-{}", name.as_str().unwrap_or_default()),
        "ready": view.ready, "started": view.started, "restartCount": view.restarts, "state": state,
    });
    if view.restarts > 0 {
        status["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started_at, "finishedAt": started_at}});
    }
    if view.phase == "Pending" {
        status.as_object_mut().map(|s| s.remove("containerID"));
    }
    status
}

/// Whether a pod's recorded status already shows `view`.
pub fn shows(pod: &Value, view: &PodView) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array);
    phase == Some(view.phase)
        && statuses.is_some_and(|s| {
            s.iter().all(|c| {
                c.get("ready").and_then(Value::as_bool) == Some(view.ready)
                    && c.get("restartCount").and_then(Value::as_i64) == Some(view.restarts)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_their_annotation() {
        assert_eq!(Fault::parse("crashloop"), Some(Fault::CrashLoop));
        assert_eq!(
            Fault::parse("image-pull-error"),
            Some(Fault::ImagePullError)
        );
        assert_eq!(Fault::parse("never-ready"), Some(Fault::NeverReady));
        assert_eq!(Fault::parse("ready-after=30s"), Some(Fault::ReadyAfter(30)));
        assert_eq!(Fault::parse("ready-after=5"), Some(Fault::ReadyAfter(5)));
        assert_eq!(Fault::parse("sometimes"), None);
        let d = json!({"spec": {"template": {"metadata": {"annotations": {FAULT_ANNOTATION: "never-ready"}}}}});
        assert_eq!(Fault::of(&d), Some(Fault::NeverReady));
    }

    #[test]
    fn views_over_time() {
        assert!(view(None, 0, "x").ready);
        assert!(!view(Some(Fault::ReadyAfter(30)), 29, "x").ready);
        assert!(view(Some(Fault::ReadyAfter(30)), 30, "x").ready);
        let crash = view(Some(Fault::CrashLoop), 25, "x");
        assert_eq!((crash.ready, crash.restarts), (false, 3));
        let pull = view(Some(Fault::ImagePullError), 5, "nginx:9");
        assert_eq!(pull.phase, "Pending");
        assert_eq!(
            pull.waiting.map(|w| w.1).as_deref(),
            Some("Back-off pulling image \"nginx:9\"")
        );
    }
}
