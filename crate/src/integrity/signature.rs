//! Ed25519 signatures over integrity manifests (docs/MANIFEST.md, "Signatures").
//!
//! Invariants: the signed message is `SIGNING_CONTEXT` followed by every byte of the file
//! before the `signature` line, which must be the last line; verification uses
//! `verify_strict` (no small-order keys, canonical S), so a signature admits exactly one
//! file. Nothing here draws entropy: keys come from 32 bytes the caller supplies, and
//! Ed25519 signing is deterministic. Nothing panics on any input.

use super::manifest::{Manifest, ManifestError, MANIFEST_MAGIC, MAX_MANIFEST_BYTES};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// Prepended to the covered bytes before signing, so a Shoal manifest signature can never
/// be taken for a signature over some other protocol's message made with the same key.
pub const SIGNING_CONTEXT: &[u8] = b"shoal-manifest-signature-v1\n";
/// Textual public keys are `ed25519:` followed by the padded standard base64 of 32 bytes.
pub const PUBLIC_KEY_PREFIX: &str = "ed25519:";
/// The only algorithm name of the `signature` line in version 1.
pub const SIGNATURE_ALGORITHM: &str = "ed25519";
const SIGNATURE_DIRECTIVE: &[u8] = b"signature ";

/// Parses `ed25519:<base64>` (surrounding whitespace allowed, as it is often pasted into
/// configuration) into the 32 key bytes. The bytes must be a valid Ed25519 point.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], ManifestError> {
    let b64 = text
        .trim()
        .strip_prefix(PUBLIC_KEY_PREFIX)
        .ok_or(ManifestError::BadPublicKey(
            "public key must start with `ed25519:`",
        ))?;
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| ManifestError::BadPublicKey("public key is not padded standard base64"))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| ManifestError::BadPublicKey("public key is not 32 bytes"))?;
    VerifyingKey::from_bytes(&key)
        .map_err(|_| ManifestError::BadPublicKey("public key is not an Ed25519 point"))?;
    Ok(key)
}

/// The textual form that `parse_public_key` reads.
pub fn format_public_key(key: &[u8; 32]) -> String {
    format!("{PUBLIC_KEY_PREFIX}{}", STANDARD.encode(key))
}

/// The public key belonging to a 32-byte Ed25519 secret key (RFC 8032 seed).
pub fn public_key_of(secret: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

fn signed_message(covered: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len().saturating_add(covered.len()));
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(covered);
    m
}

/// Appends the `signature` line to an unsigned manifest. The text must parse and must not
/// already be signed; a missing final LF is added first (the LF is then covered).
pub fn sign_manifest(unsigned: &[u8], secret: &[u8; 32]) -> Result<Vec<u8>, ManifestError> {
    Manifest::parse(unsigned)?;
    if last_line(unsigned).is_some_and(|(_, l)| l.starts_with(SIGNATURE_DIRECTIVE)) {
        return Err(ManifestError::BadSignature("manifest is already signed"));
    }
    let mut out = unsigned.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let sig = SigningKey::from_bytes(secret).sign(&signed_message(&out));
    out.extend_from_slice(
        format!(
            "signature {SIGNATURE_ALGORITHM} {}\n",
            STANDARD.encode(sig.to_bytes())
        )
        .as_bytes(),
    );
    if out.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge);
    }
    Ok(out)
}

/// The last line (without its final LF) and the offset where it starts.
fn last_line(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let start = body.iter().rposition(|b| *b == b'\n')?.checked_add(1)?;
    Some((start, body.get(start..)?))
}

impl Manifest {
    /// Parses a manifest whose last line is a valid Ed25519 signature by `public_key` over
    /// the rest of the file. The signature is checked before the entries are parsed.
    pub fn parse_signed(bytes: &[u8], public_key: &[u8; 32]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge);
        }
        // Something that is no manifest at all (an HTML error page) says so, not "unsigned".
        let magic_sp = [MANIFEST_MAGIC.as_bytes(), b" "].concat();
        if !bytes.starts_with(&magic_sp) {
            return Err(ManifestError::NotAManifest);
        }
        let (start, line) = last_line(bytes).ok_or(ManifestError::MissingSignature)?;
        let Some(fields) = line.strip_prefix(SIGNATURE_DIRECTIVE) else {
            return Err(ManifestError::MissingSignature);
        };
        let covered = bytes.get(..start).ok_or(ManifestError::MissingSignature)?;
        let fields = std::str::from_utf8(fields)
            .map_err(|_| ManifestError::BadSignature("signature line is not ASCII"))?;
        let (algorithm, value) = fields.split_once(' ').ok_or(ManifestError::BadSignature(
            "signature line must be `signature ed25519 <base64>`",
        ))?;
        if algorithm != SIGNATURE_ALGORITHM {
            return Err(ManifestError::BadSignature(
                "unsupported signature algorithm (version 1 knows ed25519)",
            ));
        }
        let sig_bytes: [u8; 64] = STANDARD
            .decode(value)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(ManifestError::BadSignature(
                "signature value is not the padded standard base64 of 64 bytes",
            ))?;
        let key = VerifyingKey::from_bytes(public_key)
            .map_err(|_| ManifestError::BadPublicKey("public key is not an Ed25519 point"))?;
        key.verify_strict(&signed_message(covered), &Signature::from_bytes(&sig_bytes))
            .map_err(|_| {
                ManifestError::BadSignature(
                    "signature does not verify (modified manifest or wrong public key)",
                )
            })?;
        Manifest::parse(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/MANIFEST.md"));

    /// The fenced block of docs/MANIFEST.md tagged `info`, with LF line ends.
    fn doc_block(info: &str) -> String {
        let mut lines = DOC.lines();
        let fence = format!("```{info}");
        while let Some(l) = lines.next() {
            if l == fence {
                let mut body = String::new();
                for b in lines.by_ref() {
                    if b == "```" {
                        return body;
                    }
                    body.push_str(b);
                    body.push('\n');
                }
            }
        }
        panic!("no ```{info} block in docs/MANIFEST.md");
    }

    fn doc_secret() -> [u8; 32] {
        let hex_seed = doc_block("shoal-test-secret-key");
        let mut s = [0u8; 32];
        hex::decode_to_slice(hex_seed.trim(), &mut s).unwrap_or_else(|e| panic!("{e}"));
        s
    }

    fn doc_public() -> [u8; 32] {
        parse_public_key(&doc_block("shoal-test-public-key")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn doc_key_pair_matches() {
        assert_eq!(public_key_of(&doc_secret()), doc_public());
        assert_eq!(
            format_public_key(&doc_public()),
            doc_block("shoal-test-public-key").trim()
        );
    }

    #[test]
    fn doc_signed_vector_verifies_and_is_reproducible() {
        let signed = doc_block("shoal-manifest signed");
        let m = Manifest::parse_signed(signed.as_bytes(), &doc_public())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.entries.len(), 2);
        assert_eq!(Manifest::parse(signed.as_bytes()), Ok(m));
        // Ed25519 is deterministic: re-signing the covered part gives the same file.
        let (start, _) = last_line(signed.as_bytes()).unwrap_or((0, b""));
        let resigned = sign_manifest(&signed.as_bytes()[..start], &doc_secret());
        assert_eq!(resigned.as_deref(), Ok(signed.as_bytes()));
    }

    #[test]
    fn any_flipped_byte_fails() {
        let signed = doc_block("shoal-manifest signed").into_bytes();
        let key = doc_public();
        for i in 0..signed.len() {
            for x in [0x01u8, 0x20, 0x80] {
                let mut bad = signed.clone();
                bad[i] ^= x;
                assert!(
                    Manifest::parse_signed(&bad, &key).is_err(),
                    "flip {x:#x} at byte {i} accepted"
                );
            }
        }
        // Truncations and appended bytes fail too.
        for cut in 0..signed.len() - 1 {
            assert!(
                Manifest::parse_signed(&signed[..cut], &key).is_err(),
                "cut {cut}"
            );
        }
        for extra in [&b"\n"[..], b"#", b"segment x 0 0"] {
            let bad = [&signed[..], extra].concat();
            assert!(Manifest::parse_signed(&bad, &key).is_err());
        }
    }

    #[test]
    fn wrong_key_missing_and_malformed_signatures() {
        let signed = doc_block("shoal-manifest signed");
        let other = public_key_of(&[7u8; 32]);
        assert_eq!(
            Manifest::parse_signed(signed.as_bytes(), &other).map(|_| ()),
            Err(ManifestError::BadSignature(
                "signature does not verify (modified manifest or wrong public key)"
            ))
        );
        let unsigned = "shoal-manifest 1\nchunk-size 15360\n";
        assert_eq!(
            Manifest::parse_signed(unsigned.as_bytes(), &doc_public()),
            Err(ManifestError::MissingSignature)
        );
        assert_eq!(
            Manifest::parse_signed(b"<html>", &doc_public()),
            Err(ManifestError::NotAManifest)
        );
        assert_eq!(
            Manifest::parse_signed(b"shoal-manifest 1", &doc_public()),
            Err(ManifestError::MissingSignature)
        );
        let rsa = format!("{unsigned}signature rsa AAAA\n");
        assert!(matches!(
            Manifest::parse_signed(rsa.as_bytes(), &doc_public()),
            Err(ManifestError::BadSignature(_))
        ));
        let short = format!("{unsigned}signature ed25519 AAAA\n");
        assert!(matches!(
            Manifest::parse_signed(short.as_bytes(), &doc_public()),
            Err(ManifestError::BadSignature(_))
        ));
        // Signing refuses a signed or an invalid manifest.
        assert!(sign_manifest(signed.as_bytes(), &doc_secret()).is_err());
        assert_eq!(
            sign_manifest(b"#EXTM3U\n", &doc_secret()),
            Err(ManifestError::NotAManifest)
        );
    }

    #[test]
    fn sign_then_verify_round_trip_without_final_lf() {
        let secret = [42u8; 32];
        let text = b"shoal-manifest 1\nchunk-size 15360\nsegment a.ts 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let signed = sign_manifest(text, &secret).unwrap_or_else(|e| panic!("{e}"));
        assert!(signed.starts_with(text) && signed.ends_with(b"\n"));
        let m = Manifest::parse_signed(&signed, &public_key_of(&secret));
        assert_eq!(m.map(|m| m.entries.len()), Ok(1));
        // The final LF after the signature is optional.
        let trimmed = &signed[..signed.len() - 1];
        assert!(Manifest::parse_signed(trimmed, &public_key_of(&secret)).is_ok());
    }

    #[test]
    fn public_key_text() {
        let pk = public_key_of(&[1u8; 32]);
        let text = format_public_key(&pk);
        assert_eq!(text.len(), 8 + 44);
        assert_eq!(parse_public_key(&format!("  {text}\n")), Ok(pk));
        assert!(parse_public_key(&text[8..]).is_err());
        assert!(parse_public_key("ed25519:AAAA").is_err());
        assert!(parse_public_key(&text.replace('=', "")).is_err());
        // A non-point: y = 2 is not on the curve.
        let mut not_point = [0u8; 32];
        not_point[0] = 2;
        assert!(parse_public_key(&format_public_key(&not_point)).is_err());
    }
}
