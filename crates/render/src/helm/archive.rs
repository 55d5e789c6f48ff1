//! Chart archives (`.tgz`, as `helm package` writes them), unpacked in
//! memory with Helm's limits: 100 MiB in all, 5 MiB per file, only regular
//! files, no path leaving the chart.

use std::collections::BTreeMap;
use std::io::Read;

/// Bytes an archive may unpack to, in all.
const MAX_TOTAL: u64 = 100 << 20;
/// Bytes one file of an archive may hold.
const MAX_FILE: u64 = 5 << 20;

/// The files of a chart archive, by path inside the chart (the archive's
/// top directory, the chart's name, taken off).
pub fn unpack(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let decoder = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(decoder.take(MAX_TOTAL + 1));
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| format!("not a chart archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a chart archive: {e}"))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let path = String::from_utf8(raw).map_err(|_| "a file name is not UTF-8".to_string())?;
        if !kind.is_file() {
            return Err(format!(
                "{path}: only regular files are allowed in a chart archive"
            ));
        }
        let inside = inside_chart(&path)?;
        if entry.size() > MAX_FILE {
            return Err(format!(
                "{path}: decompressed chart file is larger than the maximum of 5 MiB"
            ));
        }
        let mut content = Vec::new();
        entry
            .by_ref()
            .take(MAX_FILE + 1)
            .read_to_end(&mut content)
            .map_err(|e| format!("{path}: {e}"))?;
        total += content.len() as u64;
        if content.len() as u64 > MAX_FILE {
            return Err(format!(
                "{path}: decompressed chart file is larger than the maximum of 5 MiB"
            ));
        }
        if total > MAX_TOTAL {
            return Err("decompressed chart is larger than the maximum of 100 MiB".into());
        }
        if let Some(inside) = inside {
            files.insert(inside, content);
        }
    }
    if files.is_empty() {
        return Err("no files in the chart archive".into());
    }
    Ok(files)
}

/// The path inside the chart (without the top directory); `None` for a file
/// at the top level. Absolute paths and `..` are refused.
fn inside_chart(path: &str) -> Result<Option<String>, String> {
    let normalized = path.replace('\\', "/");
    if normalized.starts_with('/') || normalized.split('/').any(|p| p == "..") {
        return Err(format!(
            "chart illegally contains content outside the base directory: {path:?}"
        ));
    }
    let parts: Vec<&str> = normalized
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.len() < 2 {
        return Ok(None);
    }
    Ok(Some(parts[1..].join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gzipped tar of (path, content, kind).
    pub(crate) fn archive(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content, kind) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            // Written raw: `set_path` itself refuses `..`, an archive need not.
            let name = path.as_bytes();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_cksum();
            builder.append(&header, *content).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn unpacks_inside_the_top_directory_and_refuses_escapes() {
        let regular = tar::EntryType::Regular;
        let files = unpack(&archive(&[
            ("c/Chart.yaml", b"name: c", regular),
            ("c/templates/a.yaml", b"x", regular),
        ]))
        .unwrap();
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            ["Chart.yaml", "templates/a.yaml"]
        );
        let escape = unpack(&archive(&[("c/../../etc/passwd", b"x", regular)])).unwrap_err();
        assert!(escape.contains("outside the base directory"), "{escape}");
        let link = unpack(&archive(&[("c/link", b"", tar::EntryType::Symlink)])).unwrap_err();
        assert!(link.contains("only regular files"), "{link}");
        assert!(unpack(b"not gzip").is_err());
    }

    #[test]
    fn a_file_over_the_limit_is_refused() {
        let big = vec![b'a'; (MAX_FILE + 1) as usize];
        let err = unpack(&archive(&[("c/big", &big, tar::EntryType::Regular)])).unwrap_err();
        assert!(err.contains("larger than the maximum of 5 MiB"), "{err}");
    }
}
