//! RFC 7523 client assertions signed by the plugin (`private_key_jwt`), from a private
//! key in a granted file: what Entra certificate credentials, Okta, Auth0 and
//! oidc-provider's `private_key_jwt` clients want, a new assertion on every call (an IdP
//! refuses a `jti` it has seen).
//!
//! - Keys: PEM, PKCS#8 (`-----BEGIN PRIVATE KEY-----`), unencrypted. The algorithm
//!   follows from the key: RS256 for RSA (2048 bits or more, RFC 7518 §3.3), ES256 for
//!   P-256. Other keys are refused with a message saying what to do.
//! - Header: `alg`, `typ: JWT`, optional `kid`, optional `x5t#S256` (the certificate's
//!   SHA-256 thumbprint, base64url, as Entra wants).
//! - Claims: `iss = sub = client_id`, `aud` (the token URL), a fresh random `jti`,
//!   `iat = nbf = now`, `exp = now + `[`LIFETIME_S`].
//!
//! The key never leaves this module: [`AssertionKey`]'s `Debug` shows only its
//! algorithm, and no message quotes the key file. The PEM text and its DER are wiped
//! from memory after parsing.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::pkcs8::{DecodePrivateKey, ObjectIdentifier, PrivateKeyInfo};
use rsa::rand_core::{CryptoRng, RngCore};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use tokenhost_plugin::secret::Secret;
use tokenhost_plugin::{Error, MAX_FILE_BYTES, Platform};
use zeroize::Zeroizing;

/// How long a signed assertion is valid, in seconds: long enough for a slow network and
/// a little clock skew, short enough that a leaked one is soon useless.
pub const LIFETIME_S: u64 = 300;

/// Random bytes in a `jti` (128 bits, 22 base64url characters).
const JTI_BYTES: usize = 16;

/// The smallest RSA key accepted, in bits (RFC 7518 §3.3).
const MIN_RSA_BITS: usize = 2048;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The hint for a key that is not unencrypted PKCS#8.
const TO_PKCS8: &str = "convert it with `openssl pkcs8 -topk8 -nocrypt -in old.pem -out key.pem`";

/// A private key that signs client assertions.
pub struct AssertionKey {
    signer: KeySigner,
}

enum KeySigner {
    Rs256(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    Es256(Box<p256::ecdsa::SigningKey>),
}

impl std::fmt::Debug for AssertionKey {
    /// Only the algorithm: the key is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AssertionKey({})", self.alg())
    }
}

/// A PEM block: its label and its DER (wiped when dropped).
type PemBlock = (String, Zeroizing<Vec<u8>>);

/// The PEM blocks of `text` as (label, DER), in order. A block whose base64 does not
/// decode, or with RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`), is an error naming its
/// label.
fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, String> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = Zeroizing::new(String::new());
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            if line.contains(':') {
                return Err(format!(
                    "its `{label}` block is encrypted (legacy PEM headers); {TO_PKCS8}"
                ));
            }
            body.push_str(line);
        }
        if !closed {
            return Err(format!("its `{label}` block has no END line"));
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|_| format!("its `{label}` block is not valid base64"))?;
        blocks.push((label.to_string(), Zeroizing::new(der)));
    }
    Ok(blocks)
}

impl AssertionKey {
    /// The key in PEM `text` (the first private key block; a file may also hold the
    /// certificate). The error says what is wrong, never what the file holds.
    pub fn from_pem(text: &str) -> Result<AssertionKey, String> {
        let blocks = pem_blocks(text)?;
        let Some((label, der)) = blocks.iter().find(|(l, _)| l.ends_with("PRIVATE KEY")) else {
            return Err(
                "it holds no PEM private key (`-----BEGIN PRIVATE KEY-----`, PKCS#8)".to_string(),
            );
        };
        match label.as_str() {
            "PRIVATE KEY" => {}
            "ENCRYPTED PRIVATE KEY" => {
                return Err(
                    "the key is encrypted; decrypt it with `openssl pkcs8 -in encrypted.pem -out key.pem`"
                        .to_string(),
                );
            }
            other => return Err(format!("the key is `{other}`, not PKCS#8; {TO_PKCS8}")),
        }
        let info =
            PrivateKeyInfo::try_from(der.as_slice()).map_err(|_| bad_pkcs8("not valid PKCS#8"))?;
        let oid = info.algorithm.oid;
        if oid == RSA_ENCRYPTION {
            let key = rsa::RsaPrivateKey::from_pkcs8_der(der.as_slice())
                .map_err(|_| bad_pkcs8("not a valid RSA key"))?;
            let bits = key.size() * 8;
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "the RSA key has {bits} bits; RS256 needs at least {MIN_RSA_BITS}"
                ));
            }
            return Ok(AssertionKey {
                signer: KeySigner::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(key))),
            });
        }
        if oid == EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|_| bad_pkcs8("an EC key without a named curve"))?;
            if curve != P256 {
                let name = match curve {
                    c if c == P384 => "P-384".to_string(),
                    c if c == P521 => "P-521".to_string(),
                    c => c.to_string(),
                };
                return Err(format!(
                    "the EC key is on curve {name}; only P-256 (ES256) is supported"
                ));
            }
            let key = p256::SecretKey::from_pkcs8_der(der.as_slice())
                .map_err(|_| bad_pkcs8("not a valid P-256 key"))?;
            return Ok(AssertionKey {
                signer: KeySigner::Es256(Box::new(key.into())),
            });
        }
        if oid == ED25519 {
            return Err(
                "Ed25519 keys are not supported; use an RSA (RS256) or P-256 (ES256) key"
                    .to_string(),
            );
        }
        Err(format!(
            "the key's algorithm ({oid}) is not supported; use an RSA (RS256) or P-256 (ES256) key"
        ))
    }

    /// `RS256` or `ES256`.
    pub fn alg(&self) -> &'static str {
        match self.signer {
            KeySigner::Rs256(_) => "RS256",
            KeySigner::Es256(_) => "ES256",
        }
    }

    /// The JWS signature of `message` (RSA with blinding from `platform`'s randomness;
    /// ECDSA deterministic, RFC 6979).
    fn sign(&self, platform: &dyn Platform, message: &[u8]) -> Result<Vec<u8>, Error> {
        let failed = || Error::Unavailable("signing the client assertion failed".to_string());
        match &self.signer {
            KeySigner::Rs256(key) => {
                let mut rng = PlatformRng {
                    platform,
                    failure: None,
                };
                let signature = key.try_sign_with_rng(&mut rng, message);
                if let Some(error) = rng.failure {
                    return Err(error);
                }
                Ok(signature.map_err(|_| failed())?.to_vec())
            }
            KeySigner::Es256(key) => {
                let signature: p256::ecdsa::Signature =
                    key.try_sign(message).map_err(|_| failed())?;
                Ok(signature.to_bytes().to_vec())
            }
        }
    }
}

fn bad_pkcs8(what: &str) -> String {
    format!("the `PRIVATE KEY` block is {what}")
}

/// `wasi:random` (through the platform) as the `rand_core` RNG the `rsa` crate blinds
/// with. `fill_bytes` cannot fail, so a failure is kept and reported after signing.
struct PlatformRng<'a> {
    platform: &'a dyn Platform,
    failure: Option<Error>,
}

impl RngCore for PlatformRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        match self.platform.random_bytes(dest.len()) {
            Ok(bytes) if bytes.len() == dest.len() => dest.copy_from_slice(&bytes),
            Ok(_) => {
                self.failure = Some(Error::Unavailable(
                    "the host returned too few random bytes".to_string(),
                ));
            }
            Err(e) => self.failure = Some(e),
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for PlatformRng<'_> {}

/// The `x5t#S256` of the first certificate in PEM `text`: the base64url SHA-256 of its
/// DER.
pub fn x5t_s256(text: &str) -> Result<String, String> {
    let blocks = pem_blocks(text)?;
    let Some((_, der)) = blocks.iter().find(|(l, _)| l == "CERTIFICATE") else {
        return Err("it holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".to_string());
    };
    // A certificate is a DER SEQUENCE; anything else was not one.
    if der.first() != Some(&0x30) {
        return Err("its `CERTIFICATE` block is not a DER certificate".to_string());
    }
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_slice())))
}

/// Reads the PEM file at `path` (config key `key`) on every call (keys and certificates
/// are rotated). The text is wiped from memory when dropped; messages never quote it.
pub fn read_pem(
    platform: &dyn Platform,
    key: &str,
    path: &str,
) -> Result<Zeroizing<String>, Error> {
    let bytes = Zeroizing::new(platform.read_file(path, MAX_FILE_BYTES).map_err(|e| {
        Error::InvalidConfig(format!(
            "cannot read `{path}` (config key `{key}`): {e}; the file must exist and be granted \
             to this plugin in the provider's `allowed_paths`"
        ))
    })?);
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Error::InvalidConfig(format!(
            "`{path}` (config key `{key}`) is larger than {} KiB",
            MAX_FILE_BYTES / 1024
        )));
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_string())),
        Err(_) => Err(Error::InvalidConfig(format!(
            "`{path}` (config key `{key}`) is not PEM text (a DER file? convert it with \
             `openssl pkey -inform DER -in key.der -out key.pem`)"
        ))),
    }
}

/// What goes into one assertion besides the key.
#[derive(Debug, Clone)]
pub struct Claims<'a> {
    /// `iss` and `sub`.
    pub client_id: &'a str,
    /// `aud`: the token endpoint's URL.
    pub audience: &'a str,
    /// The header's `kid`.
    pub key_id: Option<&'a str>,
    /// The header's `x5t#S256`.
    pub x5t_s256: Option<&'a str>,
}

/// A new signed assertion for `claims`, valid for [`LIFETIME_S`] from the platform's
/// clock, with a fresh `jti` from its randomness.
pub fn sign(
    platform: &dyn Platform,
    key: &AssertionKey,
    claims: &Claims<'_>,
) -> Result<Secret, Error> {
    let mut header = serde_json::json!({"alg": key.alg(), "typ": "JWT"});
    if let Some(kid) = claims.key_id {
        header["kid"] = kid.into();
    }
    if let Some(x5t) = claims.x5t_s256 {
        header["x5t#S256"] = x5t.into();
    }
    let random = platform.random_bytes(JTI_BYTES)?;
    if random.len() != JTI_BYTES {
        return Err(Error::Unavailable(
            "the host returned too few random bytes".to_string(),
        ));
    }
    let now_s = platform.now_ms() / 1000;
    let payload = serde_json::json!({
        "iss": claims.client_id,
        "sub": claims.client_id,
        "aud": claims.audience,
        "jti": URL_SAFE_NO_PAD.encode(&random),
        "iat": now_s,
        "nbf": now_s,
        "exp": now_s + LIFETIME_S,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let signature = key.sign(platform, signing_input.as_bytes())?;
    Ok(Secret::new(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}

#[cfg(test)]
mod tests;
