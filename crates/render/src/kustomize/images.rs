//! `images`: new names, tags and digests for container images, in every
//! `containers` and `initContainers` list of every object (CustomResourceDefinitions
//! excepted), plus any image field the configuration names.

use gitplane_object::Value;
use regex::Regex;

use super::fieldspec::{FieldSpec, visit_object_field};
use super::file::Image;
use super::resource::Resource;

/// Splits an image reference into name, tag and digest, ignoring a registry
/// port (`host:5000/app:1.0` is `host:5000/app`, `1.0`).
pub fn split_image(image: &str) -> (&str, &str, &str) {
    let slash = image.find('/').filter(|&i| i > 0).unwrap_or(0);
    let search = &image[slash..];
    let at = search.find('@').map(|i| i + slash);
    let colon = search.find(':').map(|i| i + slash);
    match (colon, at) {
        (None, None) => (image, "", ""),
        (c, Some(at)) if c.is_none_or(|c| at < c) => (&image[..at], "", &image[at + 1..]),
        (Some(c), Some(at)) => (&image[..c], &image[c + 1..at], &image[at + 1..]),
        (Some(c), None) => (&image[..c], &image[c + 1..], ""),
        (None, Some(_)) => (image, "", ""),
    }
}

struct Updater<'a> {
    image: &'a Image,
    matcher: NameMatcher,
}

/// kustomize matches an image against `^<name>(@sha256)?(:[a-zA-Z0-9_.{}-]*)?$`
/// with the name used as a regular expression. Names made of the usual image
/// characters (where the only metacharacter is `.`, any character) are matched
/// directly, the same way; others go through the regex engine.
enum NameMatcher {
    Simple(Vec<char>),
    Regex(Regex),
}

impl NameMatcher {
    fn new(name: &str) -> Result<Self, String> {
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "./_:-".contains(c))
        {
            return Ok(NameMatcher::Simple(name.chars().collect()));
        }
        let pattern = |name: &str| format!("^{name}(@sha256)?(:[a-zA-Z0-9_.{{}}-]*)?$");
        Regex::new(&pattern(name))
            .or_else(|_| Regex::new(&pattern(&regex::escape(name))))
            .map(NameMatcher::Regex)
            .map_err(|e| format!("images: invalid name {name:?}: {e}"))
    }

    fn is_match(&self, image: &str) -> bool {
        match self {
            NameMatcher::Regex(re) => re.is_match(image),
            NameMatcher::Simple(name) => {
                let mut chars = image.chars();
                for expected in name {
                    match chars.next() {
                        Some(c) if *expected == '.' || c == *expected => {}
                        _ => return false,
                    }
                }
                let rest = chars.as_str();
                let rest = rest.strip_prefix("@sha256").unwrap_or(rest);
                rest.is_empty()
                    || rest.strip_prefix(':').is_some_and(|tag| {
                        tag.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_.{}-".contains(c))
                    })
            }
        }
    }
}

impl Updater<'_> {
    fn new(image: &Image) -> Result<Updater<'_>, String> {
        Ok(Updater {
            image,
            matcher: NameMatcher::new(&image.name)?,
        })
    }

    fn update(&self, value: &mut Value) {
        let Value::String(current) = value else {
            return;
        };
        if !self.matcher.is_match(current) {
            return;
        }
        let (name, tag, digest) = split_image(current);
        let name = if self.image.new_name.is_empty() {
            name
        } else {
            &self.image.new_name
        };
        let (tag, digest) = match (self.image.new_tag.as_str(), self.image.digest.as_str()) {
            ("", "") => (tag, digest),
            (new_tag, "") => (new_tag, ""),
            ("", new_digest) => ("", new_digest),
            (new_tag, new_digest) => (new_tag, new_digest),
        };
        let mut out = name.to_string();
        if !tag.is_empty() {
            out.push(':');
            out.push_str(tag);
        }
        if !digest.is_empty() {
            out.push('@');
            out.push_str(digest);
        }
        *current = out;
    }

    /// Walks the whole object for `containers` / `initContainers` lists.
    fn walk(&self, node: &mut Value) {
        match node {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    self.walk(child);
                    if (key == "containers" || key == "initContainers")
                        && let Value::Array(items) = child
                    {
                        for item in items.iter_mut() {
                            if let Some(image) = item.get_mut("image") {
                                self.update(image);
                            }
                        }
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.walk(i)),
            _ => {}
        }
    }
}

/// Applies one `images` entry to every object.
pub(crate) fn update_images(
    resources: &mut [Resource],
    image: &Image,
    specs: &[FieldSpec],
) -> Result<(), String> {
    let updater = Updater::new(image)?;
    for resource in resources.iter_mut() {
        if resource.object.kind() == "CustomResourceDefinition" {
            continue;
        }
        let mut body = Value::Object(std::mem::take(resource.object.body_mut()));
        updater.walk(&mut body);
        if let Value::Object(map) = body {
            *resource.object.body_mut() = map;
        }
        let gvk = resource.object.gvk();
        for spec in specs.iter().filter(|s| s.applies_to(&gvk)) {
            visit_object_field(
                &mut resource.object,
                spec,
                false,
                &|| Value::Null,
                &mut |node| {
                    updater.update(node);
                    Ok(())
                },
            )?;
        }
    }
    Ok(())
}

/// Parses `kustomize edit set image` syntax: `name=newName:tag`,
/// `name=newName@digest`, `name:tag`, `name@digest`, `name=newName`.
pub(crate) fn parse_set_image(spec: &str) -> Result<Image, String> {
    let (name, target) = match spec.split_once('=') {
        Some((name, target)) => (name.to_string(), target),
        None => {
            let (name, _, _) = split_image(spec);
            (name.to_string(), spec)
        }
    };
    if name.is_empty() {
        return Err(format!("invalid image override {spec:?}"));
    }
    let (new_name, tag, digest) = split_image(target);
    Ok(Image {
        new_name: if new_name == name {
            String::new()
        } else {
            new_name.to_string()
        },
        name,
        new_tag: tag.to_string(),
        digest: digest.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_kustomize() {
        assert_eq!(split_image("nginx"), ("nginx", "", ""));
        assert_eq!(split_image("nginx:1.2"), ("nginx", "1.2", ""));
        assert_eq!(
            split_image("localhost:5000/app:1"),
            ("localhost:5000/app", "1", "")
        );
        assert_eq!(split_image("app@sha256:abc"), ("app", "", "sha256:abc"));
        assert_eq!(
            split_image("reg.io/app:1@sha256:abc"),
            ("reg.io/app", "1", "sha256:abc")
        );
    }

    #[test]
    fn updates_tags_and_digests() {
        let image = Image {
            name: "nginx".into(),
            new_name: "reg/nginx".into(),
            new_tag: "2".into(),
            digest: String::new(),
        };
        let u = Updater::new(&image).unwrap();
        let mut v = Value::String("nginx@sha256:x".into());
        u.update(&mut v);
        assert_eq!(v, "reg/nginx:2");
        // kustomize's matcher does not accept a tag and a digest together.
        let mut both = Value::String("nginx:1@sha256:x".into());
        u.update(&mut both);
        assert_eq!(both, "nginx:1@sha256:x");
        let mut other = Value::String("nginx-exporter:1".into());
        u.update(&mut other);
        assert_eq!(other, "nginx-exporter:1");
    }

    #[test]
    fn simple_matcher_agrees_with_the_regex() {
        for name in [
            "nginx",
            "registry.example.com/team/web",
            "localhost:5000/app",
        ] {
            let simple = NameMatcher::new(name).unwrap();
            let regex = Regex::new(&format!("^{name}(@sha256)?(:[a-zA-Z0-9_.{{}}-]*)?$")).unwrap();
            for image in [
                name.to_string(),
                format!("{name}:1.2"),
                format!("{name}@sha256:abc"),
                format!("{name}:1@sha256:abc"),
                format!("{name}-x:1"),
                format!("{name}:a/b"),
                name.replace('.', "X"),
                format!("{name}@sha256"),
            ] {
                assert_eq!(
                    simple.is_match(&image),
                    regex.is_match(&image),
                    "{name} vs {image}"
                );
            }
        }
    }

    #[test]
    fn set_image_syntax() {
        let i = parse_set_image("web=reg/web:2").unwrap();
        assert_eq!(
            (i.name.as_str(), i.new_name.as_str(), i.new_tag.as_str()),
            ("web", "reg/web", "2")
        );
        let i = parse_set_image("web:3").unwrap();
        assert_eq!(
            (i.name.as_str(), i.new_name.as_str(), i.new_tag.as_str()),
            ("web", "", "3")
        );
    }
}
