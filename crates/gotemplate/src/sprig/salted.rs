//! Sprig's salted functions: `bcrypt`, `htpasswd` (bcrypt, `$2a$`, cost
//! 10, as Go's `x/crypto/bcrypt` writes it) and `encryptAES` (AES-256-CBC,
//! the password zero-padded or cut to 32 bytes, PKCS#7 padding, base64 of
//! IV and ciphertext), with `decryptAES` to read it back.
//!
//! Sprig draws the salt and the IV at random, so their output changes on
//! every render; here they come from the execution's repeatable sequence
//! ([`crate::Context::random`]), like the random functions', so a release
//! renders the same hash every time.

use std::sync::Arc;

use aws_lc_rs::cipher::{
    AES_256, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use base64::Engine as _;

use super::random::random_bytes;
use super::{exactly, string};
use crate::value::Value;
use crate::{Context, Function};

/// The names [`functions`] gives whose output depends on a salt.
pub(crate) const NAMES: [&str; 3] = ["bcrypt", "htpasswd", "encryptAES"];

/// Go's `bcrypt.DefaultCost`.
const COST: u32 = 10;
const BLOCK: usize = 16;

/// The salted functions and `decryptAES`, by name.
pub(crate) fn functions() -> Vec<(&'static str, Function)> {
    vec![
        ("bcrypt", Arc::new(bcrypt) as Function),
        ("htpasswd", Arc::new(htpasswd)),
        ("encryptAES", Arc::new(encrypt_aes)),
        ("decryptAES", super::plain(decrypt_aes)),
    ]
}

fn hash(context: &mut Context<'_, '_>, password: &str) -> String {
    match bcrypt::hash_with_salt(password, COST, random_bytes(context)) {
        Ok(parts) => parts.format_for_version(bcrypt::Version::TwoA),
        Err(e) => format!("failed to encrypt string with bcrypt: {e}"),
    }
}

fn bcrypt(context: &mut Context<'_, '_>, args: &[Value]) -> Result<Value, String> {
    let [password] = exactly("bcrypt", args)?;
    let password = string(password)?;
    Ok(Value::string(hash(context, password)))
}

fn htpasswd(context: &mut Context<'_, '_>, args: &[Value]) -> Result<Value, String> {
    let [user, password] = exactly("htpasswd", args)?;
    let (user, password) = (string(user)?, string(password)?);
    if user.contains(':') {
        return Ok(Value::string(format!("invalid username: {user}")));
    }
    Ok(Value::string(format!("{user}:{}", hash(context, password))))
}

/// Sprig's key: the password's bytes in 32 zero bytes.
fn aes_key(password: &str) -> Result<UnboundCipherKey, String> {
    let mut key = [0u8; 32];
    let bytes = password.as_bytes();
    let n = bytes.len().min(32);
    key[..n].copy_from_slice(&bytes[..n]);
    UnboundCipherKey::new(&AES_256, &key).map_err(|e| e.to_string())
}

fn encrypt_aes(context: &mut Context<'_, '_>, args: &[Value]) -> Result<Value, String> {
    let [password, text] = exactly("encryptAES", args)?;
    let (password, text) = (string(password)?, string(text)?);
    if text.is_empty() {
        return Ok(Value::string(""));
    }
    let padding = BLOCK - text.len() % BLOCK;
    let mut content = text.as_bytes().to_vec();
    content.extend(std::iter::repeat_n(padding as u8, padding));
    let iv: [u8; BLOCK] = random_bytes(context);
    let key = EncryptingKey::cbc(aes_key(password)?).map_err(|e| e.to_string())?;
    key.less_safe_encrypt(&mut content, EncryptionContext::Iv128(iv.into()))
        .map_err(|e| format!("encryptAES: {e}"))?;
    let mut out = iv.to_vec();
    out.extend(content);
    Ok(Value::string(
        base64::engine::general_purpose::STANDARD.encode(out),
    ))
}

fn decrypt_aes(args: &[Value]) -> Result<Value, String> {
    let [password, encoded] = exactly("decryptAES", args)?;
    let (password, encoded) = (string(password)?, string(encoded)?);
    if encoded.is_empty() {
        return Ok(Value::string(""));
    }
    let crypt = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("illegal base64 data: {e}"))?;
    if crypt.len() < BLOCK || crypt.len() % BLOCK != 0 {
        return Err("decryptAES: the input is not an IV and whole AES blocks".into());
    }
    let (iv, body) = crypt.split_at(BLOCK);
    let iv: [u8; BLOCK] = iv.try_into().map_err(|_| "decryptAES: no IV".to_string())?;
    let mut body = body.to_vec();
    let key = DecryptingKey::cbc(aes_key(password)?).map_err(|e| e.to_string())?;
    let plain = key
        .decrypt(&mut body, DecryptionContext::Iv128(iv.into()))
        .map_err(|e| format!("decryptAES: {e}"))?;
    // Sprig drops as many bytes as the last one says, without checking them.
    let cut = plain.last().map_or(0, |last| usize::from(*last));
    let kept = plain
        .len()
        .checked_sub(cut)
        .ok_or("decryptAES: the padding is longer than the text (wrong password?)")?;
    Ok(Value::string(
        String::from_utf8_lossy(&plain[..kept]).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use crate::sprig::render_for_test as render;

    #[test]
    fn hashes_verify_and_ciphertexts_decrypt() {
        let hashed = render(r#"{{ bcrypt "s3cret" }}"#).unwrap();
        assert!(hashed.starts_with("$2a$10$"), "{hashed}");
        assert!(bcrypt::verify("s3cret", &hashed).unwrap());
        // Repeatable: the salt comes from the execution's sequence.
        assert_eq!(render(r#"{{ bcrypt "s3cret" }}"#).unwrap(), hashed);
        let line = render(r#"{{ htpasswd "admin" "pw" }}"#).unwrap();
        let (user, hash) = line.split_once(':').unwrap();
        assert_eq!(user, "admin");
        assert!(bcrypt::verify("pw", hash).unwrap());
        assert_eq!(
            render(r#"{{ htpasswd "ad:min" "pw" }}"#).unwrap(),
            "invalid username: ad:min"
        );
        let round_trip = r#"{{ encryptAES "a key" "sixteen bytes!!!" | decryptAES "a key" }}|{{ encryptAES "k" "" }}|{{ decryptAES "k" "" }}"#;
        assert_eq!(render(round_trip).unwrap(), "sixteen bytes!!!||");
        let encrypted = render(r#"{{ encryptAES "a key" "x" }}"#).unwrap();
        assert_eq!(encrypted.len(), 44, "IV and one block, base64: {encrypted}");
        assert!(
            render(r#"{{ decryptAES "k" "c2hvcnQ=" }}"#)
                .unwrap_err()
                .ends_with("decryptAES: the input is not an IV and whole AES blocks")
        );
    }
}
