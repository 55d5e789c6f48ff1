//! The `images` variable: every container image of a pod (or pod
//! template), split into registry, path, name, tag and digest, by
//! container list and container name, as Kyverno provides it.

use gitplane_object::{Map, Value, json};

/// One image reference split into its parts.
pub fn parse_image(reference: &str) -> Value {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, d),
        None => (reference, ""),
    };
    let (registry, path_and_tag) = match rest.split_once('/') {
        Some((first, tail)) if first.contains(['.', ':']) || first == "localhost" => (first, tail),
        _ => ("docker.io", rest),
    };
    let (path, tag) = match path_and_tag.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, t),
        _ => (path_and_tag, if digest.is_empty() { "latest" } else { "" }),
    };
    let name = path.rsplit('/').next().unwrap_or(path);
    let mut info = json!({
        "registry": registry, "path": path, "name": name, "reference": reference,
    });
    if !tag.is_empty() {
        info["tag"] = json!(tag);
        info["referenceWithTag"] = json!(format!("{registry}/{path}:{tag}"));
    }
    if !digest.is_empty() {
        info["digest"] = json!(digest);
    }
    info
}

/// `images.containers.<name>`, `images.initContainers.<name>`,
/// `images.ephemeralContainers.<name>` for a pod spec.
pub fn images(pod_spec: &Value) -> Value {
    let mut out = Map::new();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let mut by_name = Map::new();
        for container in pod_spec[list].as_array().into_iter().flatten() {
            if let (Some(name), Some(image)) =
                (container["name"].as_str(), container["image"].as_str())
            {
                by_name.insert(name.to_string(), parse_image(image));
            }
        }
        if !by_name.is_empty() {
            out.insert(list.to_string(), Value::Object(by_name));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_as_kyverno_splits_them() {
        let nginx = parse_image("nginx");
        assert_eq!(nginx["registry"], "docker.io");
        assert_eq!(nginx["tag"], "latest");
        let full = parse_image("ghcr.io/acme/shop:1.2.3");
        assert_eq!(full["registry"], "ghcr.io");
        assert_eq!(full["path"], "acme/shop");
        assert_eq!(full["name"], "shop");
        assert_eq!(full["tag"], "1.2.3");
        let local = parse_image("localhost:5000/app@sha256:abc");
        assert_eq!(local["registry"], "localhost:5000");
        assert_eq!(local["digest"], "sha256:abc");
        assert!(local.get("tag").is_none());
    }
}
