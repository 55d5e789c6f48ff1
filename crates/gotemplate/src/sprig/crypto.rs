//! Sprig's key and certificate generators (`genPrivateKey`, `genCA`,
//! `genSelfSignedCert`, `genSignedCert` and their `…WithKey` forms), as
//! charts use them for webhook certificates. Like Helm, each call makes a
//! new key: a template calling one is noted by the Helm engine, because
//! its output changes on every render. Also `buildCustomCert` and
//! `derivePassword`, which are deterministic.
//!
//! Differences from Sprig: keys are PEM PKCS#8 (`PRIVATE KEY`; Sprig
//! writes RSA keys as PKCS#1, `RSA PRIVATE KEY`), which Kubernetes and the
//! `…WithKey` forms read as well; `genPrivateKey "dsa"` is refused; a CA
//! given to `genSignedCert` must come from `genCA` in the same render
//! (its PEM alone cannot be parsed here).

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SignatureAlgorithm,
};

use base64::Engine as _;

use super::{der, exactly, int, plain, string};
use crate::Function;
use crate::value::{GoObject, Value};

/// The names [`functions`] gives.
pub(crate) const NAMES: [&str; 7] = [
    "genPrivateKey",
    "genCA",
    "genCAWithKey",
    "genSelfSignedCert",
    "genSelfSignedCertWithKey",
    "genSignedCert",
    "genSignedCertWithKey",
];

/// The functions that make no key: `buildCustomCert`, `derivePassword`.
pub(crate) const FUNCTIONS: &[(&str, super::Plain)] = &[
    ("buildCustomCert", build_custom_cert),
    ("derivePassword", derive_password),
];

/// The Master Password algorithm's name scope.
const MASTER_PASSWORD_SCOPE: &[u8] = b"com.lyndir.masterpassword";

/// The Master Password algorithm's password templates per type.
fn password_templates(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "maximum" => &["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"],
        "long" => &[
            "CvcvnoCvcvCvcv",
            "CvcvCvcvnoCvcv",
            "CvcvCvcvCvcvno",
            "CvccnoCvcvCvcv",
            "CvccCvcvnoCvcv",
            "CvccCvcvCvcvno",
            "CvcvnoCvccCvcv",
            "CvcvCvccnoCvcv",
            "CvcvCvccCvcvno",
            "CvcvnoCvcvCvcc",
            "CvcvCvcvnoCvcc",
            "CvcvCvcvCvccno",
            "CvccnoCvccCvcv",
            "CvccCvccnoCvcv",
            "CvccCvccCvcvno",
            "CvcvnoCvccCvcc",
            "CvcvCvccnoCvcc",
            "CvcvCvccCvccno",
            "CvccnoCvcvCvcc",
            "CvccCvcvnoCvcc",
            "CvccCvcvCvccno",
        ],
        "medium" => &["CvcnoCvc", "CvcCvcno"],
        "short" => &["Cvcn"],
        "basic" => &["aaanaaan", "aannaaan", "aaannaaa"],
        "pin" => &["nnnn"],
        _ => return None,
    })
}

/// The characters a password template's letter stands for.
fn template_characters(letter: u8) -> &'static [u8] {
    match letter {
        b'V' => b"AEIOU",
        b'C' => b"BCDFGHJKLMNPQRSTVWXYZ",
        b'v' => b"aeiou",
        b'c' => b"bcdfghjklmnpqrstvwxyz",
        b'A' => b"AEIOUBCDFGHJKLMNPQRSTVWXYZ",
        b'a' => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
        b'n' => b"0123456789",
        b'o' => b"@&%?,=[]_:-+*$#!'^~;()/.",
        // `x`, the only other letter the templates use.
        _ => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
    }
}

/// `derivePassword counter type password user site`: the Master Password
/// algorithm (a scrypt key from the password and user, an HMAC-SHA256 seed
/// from the site and counter, picking a template and its characters).
/// Deterministic, so a chart using it renders the same every time. An
/// unknown type gives Sprig's message as the value, not an error.
fn derive_password(args: &[Value]) -> Result<Value, String> {
    let [counter, kind, password, user, site] = exactly::<5>("derivePassword", args)?;
    let counter = u32::try_from(int(counter)?)
        .map_err(|_| "derivePassword: the counter is not a uint32".to_string())?;
    let kind = string(kind)?;
    let Some(templates) = password_templates(kind) else {
        return Ok(format!("cannot find password template {kind}").into());
    };
    let scoped = |text: &str| {
        let mut bytes = MASTER_PASSWORD_SCOPE.to_vec();
        bytes.extend_from_slice(&(text.len() as u32).to_be_bytes());
        bytes.extend_from_slice(text.as_bytes());
        bytes
    };
    let params = scrypt::Params::new(15, 8, 2, 64).map_err(|e| e.to_string())?;
    let mut key = [0u8; 64];
    scrypt::scrypt(
        string(password)?.as_bytes(),
        &scoped(string(user)?),
        &params,
        &mut key,
    )
    .map_err(|e| format!("failed to create password: {e}"))?;
    let mut message = scoped(string(site)?);
    message.extend_from_slice(&counter.to_be_bytes());
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let seed = aws_lc_rs::hmac::sign(&hmac_key, &message);
    let seed = seed.as_ref();
    let template = templates[seed[0] as usize % templates.len()];
    let password: String = template
        .bytes()
        .zip(&seed[1..])
        .map(|(letter, &byte)| {
            let characters = template_characters(letter);
            characters[byte as usize % characters.len()] as char
        })
        .collect();
    Ok(password.into())
}

/// The generators, by name.
pub(crate) fn functions() -> Vec<(&'static str, Function)> {
    vec![
        ("genPrivateKey", plain(gen_private_key)),
        ("genCA", plain(|args| gen_ca("genCA", args, false))),
        (
            "genCAWithKey",
            plain(|args| gen_ca("genCAWithKey", args, true)),
        ),
        (
            "genSelfSignedCert",
            plain(|args| gen_self_signed("genSelfSignedCert", args, false)),
        ),
        (
            "genSelfSignedCertWithKey",
            plain(|args| gen_self_signed("genSelfSignedCertWithKey", args, true)),
        ),
        (
            "genSignedCert",
            plain(|args| gen_signed("genSignedCert", args, false)),
        ),
        (
            "genSignedCertWithKey",
            plain(|args| gen_signed("genSignedCertWithKey", args, true)),
        ),
    ]
}

/// Sprig's `certificate`: `.Cert` and `.Key` (PEM); a CA keeps what signs.
#[derive(Debug)]
struct Certificate {
    cert: String,
    key: String,
    issuer: Option<Arc<Issuer<'static, KeyPair>>>,
}

impl GoObject for Certificate {
    fn type_name(&self) -> &str {
        "sprig.certificate"
    }

    fn member(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let text = match name {
            "Cert" => &self.cert,
            "Key" => &self.key,
            _ => return None,
        };
        Some(if args.is_empty() {
            Ok(Value::string(text.as_str()))
        } else {
            Err(format!("{name} is a field, not a method"))
        })
    }

    fn print(&self) -> String {
        format!("{{{} {}}}", self.cert, self.key)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

fn gen_private_key(args: &[Value]) -> Result<Value, String> {
    let [kind] = exactly("genPrivateKey", args)?;
    let algorithm: &'static SignatureAlgorithm = match string(kind)? {
        "rsa" => &rcgen::PKCS_RSA_SHA256,
        "ecdsa" => &rcgen::PKCS_ECDSA_P256_SHA256,
        "ed25519" => &rcgen::PKCS_ED25519,
        "dsa" => return Err("genPrivateKey: gitplane does not make DSA keys".into()),
        other => return Ok(Value::string(format!("Unknown type {other}"))),
    };
    let key = if algorithm == &rcgen::PKCS_RSA_SHA256 {
        // Sprig's RSA keys from genPrivateKey are 4096 bits.
        KeyPair::generate_rsa_for(algorithm, rcgen::RsaKeySize::_4096).map_err(|e| e.to_string())?
    } else {
        new_key(algorithm)?
    };
    Ok(Value::string(key.serialize_pem()))
}

/// A key: RSA 2048 for certificates, as Sprig makes them.
fn new_key(algorithm: &'static SignatureAlgorithm) -> Result<KeyPair, String> {
    if algorithm == &rcgen::PKCS_RSA_SHA256 {
        return KeyPair::generate_rsa_for(algorithm, rcgen::RsaKeySize::_2048)
            .map_err(|e| e.to_string());
    }
    KeyPair::generate_for(algorithm).map_err(|e| e.to_string())
}

/// The key given as PEM (`…WithKey`), or a new RSA key.
fn key_from(name: &str, given: Option<&Value>) -> Result<KeyPair, String> {
    match given {
        Some(pem) => KeyPair::from_pem(string(pem)?)
            .map_err(|e| format!("{name}: the key is not a PEM private key: {e}")),
        None => new_key(&rcgen::PKCS_RSA_SHA256),
    }
}

/// Sprig's certificate template: subject CN, valid from now for `days`,
/// server and client auth.
fn params(cn: &str, days: i64, names: Vec<SanType>) -> Result<CertificateParams, String> {
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, cn);
    params.distinguished_name = subject;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now;
    params.not_after = now + time::Duration::days(days);
    params.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.subject_alt_names = names;
    Ok(params)
}

/// `ips` and `alternateNames` (lists of strings) as subject alternative names.
fn alternative_names(ips: &Value, dns: &Value) -> Result<Vec<SanType>, String> {
    let mut names = Vec::new();
    for ip in list(ips)? {
        let text = string(&ip)?;
        let address: IpAddr = text
            .parse()
            .map_err(|_| format!("error parsing ip: {text}"))?;
        names.push(SanType::IpAddress(address));
    }
    for name in list(dns)? {
        let name = string(&name)?;
        let dns = name.try_into().map_err(|e| format!("{name}: {e}"))?;
        names.push(SanType::DnsName(dns));
    }
    Ok(names)
}

fn list(value: &Value) -> Result<Vec<Value>, String> {
    match value {
        Value::Nil | Value::Missing => Ok(Vec::new()),
        Value::List(items) => Ok(items.to_vec()),
        other => Err(super::wrong_type("[]interface {}", other)),
    }
}

/// `genCA cn days` (`genCAWithKey cn days key`).
fn gen_ca(name: &str, args: &[Value], with_key: bool) -> Result<Value, String> {
    let (fixed, key) = split_key(name, args, 2, with_key)?;
    let [cn, days] = exactly::<2>(name, fixed)?;
    let key = key_from(name, key)?;
    let mut params = params(string(cn)?, int(days)?, Vec::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages.push(KeyUsagePurpose::KeyCertSign);
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok(Value::Object(Arc::new(Certificate {
        cert: cert.pem(),
        key: key.serialize_pem(),
        issuer: Some(Arc::new(Issuer::new(params, key))),
    })))
}

/// `buildCustomCert b64cert b64key`: a CA given as base64 of its PEM
/// certificate and key, checked as Sprig checks them.
fn build_custom_cert(args: &[Value]) -> Result<Value, String> {
    let [cert, key] = exactly("buildCustomCert", args)?;
    let decode = |text: &str, what: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| format!("unable to decode base64 {what}"))
    };
    let cert = decode(string(cert)?, "certificate")?;
    let key = decode(string(key)?, "private key")?;
    let der = der::first_pem_block(&cert).ok_or("unable to decode certificate")?;
    let name = der::issuer_name(&der)
        .map_err(|e| format!("error parsing certificate: decodedCert.Bytes: {e}"))?;
    if der::first_pem_block(&key).is_none() {
        return Err("error parsing private key: no PEM data in input".into());
    }
    let signing_key =
        KeyPair::from_pem(&key).map_err(|e| format!("error parsing private key: {e}"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name.subject;
    if let Some(id) = name.key_identifier {
        params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(id);
    }
    Ok(Value::Object(Arc::new(Certificate {
        cert,
        key,
        issuer: Some(Arc::new(Issuer::new(params, signing_key))),
    })))
}

/// `genSelfSignedCert cn ips alternateNames days` (`…WithKey … key`).
fn gen_self_signed(name: &str, args: &[Value], with_key: bool) -> Result<Value, String> {
    let (fixed, key) = split_key(name, args, 4, with_key)?;
    let [cn, ips, dns, days] = exactly::<4>(name, fixed)?;
    let key = key_from(name, key)?;
    let params = params(string(cn)?, int(days)?, alternative_names(ips, dns)?)?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok(Value::Object(Arc::new(Certificate {
        cert: cert.pem(),
        key: key.serialize_pem(),
        issuer: None,
    })))
}

/// `genSignedCert cn ips alternateNames days ca` (`…WithKey … ca key`).
fn gen_signed(name: &str, args: &[Value], with_key: bool) -> Result<Value, String> {
    let (fixed, key) = split_key(name, args, 5, with_key)?;
    let [cn, ips, dns, days, ca] = exactly::<5>(name, fixed)?;
    let issuer = match ca {
        Value::Object(object) => object
            .as_any()
            .and_then(|any| any.downcast_ref::<Certificate>())
            .and_then(|c| c.issuer.clone()),
        _ => None,
    }
    .ok_or_else(|| format!("{name}: the CA must come from genCA or buildCustomCert"))?;
    let key = key_from(name, key)?;
    let params = params(string(cn)?, int(days)?, alternative_names(ips, dns)?)?;
    let cert = params.signed_by(&key, &issuer).map_err(|e| e.to_string())?;
    Ok(Value::Object(Arc::new(Certificate {
        cert: cert.pem(),
        key: key.serialize_pem(),
        issuer: None,
    })))
}

/// The `fixed` arguments, and the key after them in a `…WithKey` form,
/// checked against Go's arity.
fn split_key<'a>(
    name: &str,
    args: &'a [Value],
    fixed: usize,
    with_key: bool,
) -> Result<(&'a [Value], Option<&'a Value>), String> {
    crate::funcs::arity(name, args, fixed + usize::from(with_key))?;
    let (fixed, key) = args.split_at(fixed);
    Ok((fixed, key.first()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};

    use crate::sprig::render_for_test as render;

    /// Whether `cert` (PEM), chained to `ca` (PEM), is valid now for `name`.
    fn verify(ca: &str, cert: &str, name: &str) -> Result<(), String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
            .unwrap();
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let leaf = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        verifier
            .verify_server_cert(
                &leaf,
                &[],
                &ServerName::try_from(name.to_string()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn derive_password_follows_the_master_password_algorithm() {
        // Values printed by helm 4.1.4 for the same calls.
        assert_eq!(
            render(
                r#"{{ derivePassword 1 "pin" "secret" "user" "example.com" }}|{{ derivePassword 1 "nope" "s" "u" "x" }}"#
            )
            .unwrap(),
            "6478|cannot find password template nope"
        );
        let error = render(r#"{{ derivePassword -1 "pin" "s" "u" "x" }}"#).unwrap_err();
        assert!(error.contains("uint32"), "{error}");
    }

    #[test]
    fn the_names_are_the_functions() {
        let names: Vec<&str> = super::functions().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, super::NAMES);
    }

    #[test]
    fn a_ca_signs_certificates_a_client_accepts_for_their_names() {
        let out = render(
            r#"{{ $ca := genCA "webhook-ca" 365 }}{{ $c := genSignedCert "web" (list "10.0.0.7") (list "web.default.svc") 365 $ca }}{{ $ca.Cert }}|{{ $c.Cert }}|{{ $c.Key }}"#,
        )
        .unwrap();
        let parts: Vec<&str> = out.split('|').collect();
        assert!(parts[2].starts_with("-----BEGIN PRIVATE KEY-----"), "{out}");
        verify(parts[0], parts[1], "web.default.svc").unwrap();
        verify(parts[0], parts[1], "10.0.0.7").unwrap();
        assert!(verify(parts[0], parts[1], "other.svc").is_err());

        // Self-signed, with a key of the chart's own.
        let out = render(
            r#"{{ $k := genPrivateKey "ecdsa" }}{{ $c := genSelfSignedCertWithKey "x" nil (list "x.example") 30 $k }}{{ $c.Cert }}|{{ eq $c.Key $k }}"#,
        )
        .unwrap();
        let (cert, same_key) = out.split_once('|').unwrap();
        verify(cert, cert, "x.example").unwrap();
        assert_eq!(same_key, "true");
        // Each call makes a new key, as in Sprig.
        let keys =
            render(r#"{{ genPrivateKey "ed25519" }}|{{ genPrivateKey "ed25519" }}"#).unwrap();
        let (a, b) = keys.split_once('|').unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn a_ca_given_as_pem_signs_certificates_that_chain_to_it() {
        let out = render(
            r#"{{ $ca := genCA "given-root" 30 }}{{ $given := buildCustomCert ($ca.Cert | b64enc) ($ca.Key | b64enc) }}{{ $c := genSignedCert "web" nil (list "web.svc") 30 $given }}{{ $ca.Cert }}|{{ $c.Cert }}|{{ eq $given.Cert $ca.Cert }}"#,
        )
        .unwrap();
        let parts: Vec<&str> = out.split('|').collect();
        verify(parts[0], parts[1], "web.svc").unwrap();
        assert_eq!(parts[2], "true");
        let err = render(r#"{{ buildCustomCert (b64enc "no pem") "" }}"#).unwrap_err();
        assert!(
            err.ends_with("error calling buildCustomCert: unable to decode certificate"),
            "{err}"
        );
        let truncated = r#"{{ buildCustomCert (b64enc "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n") "" }}"#;
        assert!(
            render(truncated)
                .unwrap_err()
                .ends_with("x509: malformed certificate")
        );
    }

    #[test]
    fn bad_arguments_fail_as_sprig_fails() {
        assert_eq!(
            render(r#"{{ genPrivateKey "x" }}"#).unwrap(),
            "Unknown type x"
        );
        let error = |src: &str| render(src).unwrap_err();
        assert!(error(r#"{{ genPrivateKey "dsa" }}"#).contains("DSA"));
        assert!(
            error(r#"{{ genSelfSignedCert "x" (list "nope") nil 1 }}"#)
                .contains("error parsing ip: nope")
        );
        assert!(
            error(r#"{{ genSignedCert "x" nil nil 1 "not a ca" }}"#)
                .contains("the CA must come from genCA or buildCustomCert")
        );
        assert!(
            error(r#"{{ genCA "x" }}"#).contains("wrong number of args for genCA: want 2 got 1")
        );
    }
}
