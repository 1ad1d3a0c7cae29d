//! CloudFront's signed URL with a canned policy, exactly as AWS documents
//! it ("Create a signed URL using a canned policy"): the policy JSON
//! without whitespace, signed with RSA-SHA1 (PKCS #1 v1.5), base64 with
//! CloudFront's URL-safe substitutions (`+`→`-`, `=`→`_`, `/`→`~`), and
//! the query `Expires`, `Signature`, `Key-Pair-Id` in that order.

use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};

/// A key pair of a CloudFront trusted key group (or legacy key pair).
pub struct KeyPair {
    id: String,
    key: PKey<Private>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a private key cannot sign CloudFront URLs.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("is not a PEM private key: {0}")]
    NotPem(String),
    #[error("is a {0} key; CloudFront signs with RSA")]
    NotRsa(String),
}

impl KeyPair {
    /// A key pair from the id CloudFront knows it by and its PEM private
    /// key (PKCS #1 `RSA PRIVATE KEY` or PKCS #8 `PRIVATE KEY`).
    pub fn from_pem(id: &str, pem: &[u8]) -> Result<Self, KeyError> {
        let key = PKey::private_key_from_pem(pem).map_err(|e| {
            let reason = e
                .errors()
                .first()
                .and_then(|e| e.reason())
                .unwrap_or("unreadable");
            KeyError::NotPem(reason.to_owned())
        })?;
        if key.rsa().is_err() {
            return Err(KeyError::NotRsa(format!("{:?}", key.id())));
        }
        Ok(Self {
            id: id.to_owned(),
            key,
        })
    }

    /// `resource` signed to be valid until `expires` (seconds since the
    /// epoch).
    pub fn sign(&self, resource: &str, expires: i64) -> String {
        let policy = format!(
            r#"{{"Statement":[{{"Resource":"{resource}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#
        );
        let signature = self.signature(policy.as_bytes());
        let separator = if resource.contains('?') { '&' } else { '?' };
        format!(
            "{resource}{separator}Expires={expires}&Signature={signature}&Key-Pair-Id={}",
            self.id
        )
    }

    fn signature(&self, policy: &[u8]) -> String {
        // Signing with a key that passed `from_pem`'s RSA check cannot fail
        // but for an allocation failure inside OpenSSL.
        let mut signer = openssl::sign::Signer::new(MessageDigest::sha1(), &self.key)
            .expect("an RSA key signs SHA-1");
        signer.update(policy).expect("signer accepts data");
        let raw = signer.sign_to_vec().expect("RSA signing");
        base64::engine::general_purpose::STANDARD
            .encode(raw)
            .chars()
            .map(|c| match c {
                '+' => '-',
                '=' => '_',
                '/' => '~',
                c => c,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA: &[u8] = include_bytes!("../testdata/rsa-2048.pem");

    /// Signatures computed independently with AWS's documented openssl
    /// pipeline (testdata/README.md) for the same policy.
    #[test]
    fn signed_urls_equal_the_ones_aws_documents_how_to_compute() {
        let pair = KeyPair::from_pem("K2JCJMDEHXQW5F", RSA).expect("RSA key");
        let aaa = "a".repeat(128);
        let hex = "0123456789abcdef".repeat(8);
        let cases = [
            (
                format!("https://d111111abcdef8.cloudfront.net/sha512/{aaa}"),
                1_800_000_060,
                "AByZZix4RswbMi-L59Kzy87hVXSMuvTz8tAdz1JPtXShRS6VtXPqRWml6GFSMbXBc5pfbf-ECXOiKqbyN0ws7ocqURs4rmPHM8ByWRM9WoUHl2uLsqZuXJ2j0yo4tdwyg3wMBefo4avmPFgYEDlW99QEqAV9JCIHQk~Z3w0aZB66MIT1AZL4nGEVMDJwg0cDRCWidBKn4u2g3RVx7g3UA-Kz-u7VjUcEQ~-0AyLD4StXgXlWNPKmEsRuePF-NO53O~mOhHsq5xoMRadZRO-l7DRPbrTjNVLoj9-EBMMUtzGsyLCXdcY3Rr2LoZxqjAWD7p-KHA4496pXxCs28CqOKw__",
            ),
            (
                format!("https://tooltool.example.com/sha512/{hex}"),
                2_000_000_000,
                "csp4D9UxlG2Ioyrx~H7N51xHTWg-GVdOhTOQLph82kLW57cNOEXVE40ChOn~8drG3CRnoyxAZnYQZqMFYq0GjmBB9zITK63ZGQb~nGsUjFzCerT43Poy1xLigm325zpHu0Pj63a9koXoFRbjiPPUEQ-WXk0WKaPAH3F~L1Rh0dRcBrlVYRGkjY7TUG0JTfgam14FIL~r7Yh2jyAXtxYszSODtuPKX7zMbA3GDWFR8eSKv5iboTNSCVieC~wGUZQct-vUCNBGtDYbYw7nQnPszHYsW6mN4GRThHvcQ4Ay1V8wJe9VzfVFuje7pTDZ1Nn0WVQymOcrMEgxarD~T8oUEA__",
            ),
        ];
        for (resource, expires, signature) in cases {
            assert_eq!(
                pair.sign(&resource, expires),
                format!(
                    "{resource}?Expires={expires}&Signature={signature}&Key-Pair-Id=K2JCJMDEHXQW5F"
                )
            );
        }
    }

    #[test]
    fn keys_that_cannot_sign_are_refused_with_the_reason() {
        assert!(matches!(
            KeyPair::from_pem("K", include_bytes!("../testdata/ed25519.pem")),
            Err(KeyError::NotRsa(_))
        ));
        for garbage in [
            &b""[..],
            b"not a key",
            b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        ] {
            assert!(matches!(
                KeyPair::from_pem("K", garbage),
                Err(KeyError::NotPem(_))
            ));
        }
    }
}
