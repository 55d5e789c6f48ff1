//! Just enough DER to take a CA certificate given as PEM (Sprig's
//! `buildCustomCert`) as an issuer: the subject name with its attributes'
//! string types kept (verifiers compare names byte for byte), and the
//! subject key identifier.

use base64::Engine as _;
use rcgen::{DistinguishedName, DnType, DnValue};

/// One DER element: its tag and contents.
struct Element<'a> {
    tag: u8,
    contents: &'a [u8],
}

/// The elements of `bytes`, in order.
fn elements(mut bytes: &[u8]) -> Result<Vec<Element<'_>>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (element, rest) = element(bytes)?;
        out.push(element);
        bytes = rest;
    }
    Ok(out)
}

/// The element at the start of `bytes`, and what follows it.
fn element(bytes: &[u8]) -> Result<(Element<'_>, &[u8]), String> {
    let truncated = || "x509: malformed certificate".to_string();
    let tag = *bytes.first().ok_or_else(truncated)?;
    let first = *bytes.get(1).ok_or_else(truncated)?;
    let (length, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err(truncated());
        }
        let digits = bytes.get(2..2 + count).ok_or_else(truncated)?;
        let length = digits
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (length, 2 + count)
    };
    let contents = bytes.get(header..header + length).ok_or_else(truncated)?;
    Ok((Element { tag, contents }, &bytes[header + length..]))
}

/// The first PEM block's bytes, of whatever type (as Go's `pem.Decode`).
pub(crate) fn first_pem_block(text: &str) -> Option<Vec<u8>> {
    let start = text.find("-----BEGIN ")?;
    let after_header = start + text[start..].find('\n')? + 1;
    let end = after_header + text[after_header..].find("-----END ")?;
    let body: String = text[after_header..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// What an issuer needs of a certificate.
pub(crate) struct IssuerName {
    pub(crate) subject: DistinguishedName,
    pub(crate) key_identifier: Option<Vec<u8>>,
}

/// The subject and subject key identifier of a DER certificate.
pub(crate) fn issuer_name(der: &[u8]) -> Result<IssuerName, String> {
    let malformed = |what: &str| format!("x509: malformed {what}");
    let (certificate, _) = element(der)?;
    let parts = elements(certificate.contents)?;
    let tbs = parts.first().ok_or_else(|| malformed("certificate"))?;
    let mut fields = elements(tbs.contents)?.into_iter().peekable();
    // [0] version, when present.
    if fields.peek().is_some_and(|f| f.tag == 0xa0) {
        fields.next();
    }
    let fields: Vec<Element<'_>> = fields.collect();
    // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo…
    let subject = fields.get(4).ok_or_else(|| malformed("tbs certificate"))?;
    let key_identifier = fields
        .iter()
        .find(|f| f.tag == 0xa3)
        .map(|extensions| subject_key_identifier(extensions.contents))
        .transpose()?
        .flatten();
    Ok(IssuerName {
        subject: name(subject.contents)?,
        key_identifier,
    })
}

/// A Name (a sequence of sets of type-and-value pairs).
fn name(contents: &[u8]) -> Result<DistinguishedName, String> {
    let mut name = DistinguishedName::new();
    for rdn in elements(contents)? {
        for pair in elements(rdn.contents)? {
            let [kind, value] = elements(pair.contents)?
                .try_into()
                .map_err(|_| "x509: malformed name".to_string())?;
            name.push(
                DnType::from_oid(&oid(kind.contents)?),
                string_value(&value)?,
            );
        }
    }
    Ok(name)
}

/// An attribute's string, in the string type it was written in.
fn string_value(value: &Element<'_>) -> Result<DnValue, String> {
    let text = || String::from_utf8_lossy(value.contents).into_owned();
    let invalid = |e: rcgen::Error| format!("x509: invalid name: {e}");
    Ok(match value.tag {
        0x13 => DnValue::PrintableString(text().try_into().map_err(invalid)?),
        0x16 => DnValue::Ia5String(text().try_into().map_err(invalid)?),
        0x14 => DnValue::TeletexString(text().try_into().map_err(invalid)?),
        0x1e => DnValue::BmpString(
            rcgen::string::BmpString::from_utf16be(value.contents.to_vec()).map_err(invalid)?,
        ),
        0x1c => DnValue::UniversalString(
            rcgen::string::UniversalString::from_utf32be(value.contents.to_vec())
                .map_err(invalid)?,
        ),
        _ => DnValue::Utf8String(text()),
    })
}

/// An object identifier's arcs.
fn oid(contents: &[u8]) -> Result<Vec<u64>, String> {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for (i, byte) in contents.iter().enumerate() {
        value = value
            .checked_mul(128)
            .ok_or("x509: malformed object identifier")?
            | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == contents.len() {
            return Err("x509: malformed object identifier".into());
        }
    }
    Ok(arcs)
}

/// The subject key identifier extension (2.5.29.14), if there is one.
fn subject_key_identifier(extensions: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let (list, _) = element(extensions)?;
    for extension in elements(list.contents)? {
        let parts = elements(extension.contents)?;
        let (Some(id), Some(value)) = (parts.first(), parts.last()) else {
            continue;
        };
        if oid(id.contents)? == [2, 5, 29, 14] {
            let (inner, _) = element(value.contents)?;
            return Ok(Some(inner.contents.to_vec()));
        }
    }
    Ok(None)
}
