//! The document signer: a P-256 key derived from the seed and its self-signed X.509
//! certificate; `kid` = the first 8 bytes of the SHA-256 of the certificate's DER
//! (the EU DCC rule).

use std::str::FromStr;
use std::time::Duration;

use p256::ecdsa::{DerSignature, Signature, SigningKey, signature::Signer as _};
use sha2::{Digest, Sha256};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::UtcTime;
use x509_cert::der::{Encode, EncodePem, pem::LineEnding};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

/// Subject (and issuer) of the signing certificate.
pub const SUBJECT: &str = "CN=ecosim DSC IT 1,O=Ministero della Salute (ecosim),C=IT";

/// The signing key and its certificate.
pub struct Signer {
    key: SigningKey,
    der: Vec<u8>,
    pem: String,
    kid: [u8; 8],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &hex::encode(self.kid)).finish_non_exhaustive()
    }
}

/// Why the signer could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot make the signing certificate: {0}")]
pub struct SignerError(String);

impl Signer {
    /// The signer of an ecosystem seeded with `seed`: same seed, same key and certificate.
    pub fn from_seed(seed: u64) -> Result<Self, SignerError> {
        let key = (0u32..)
            .find_map(|n| {
                let d = Sha256::digest(format!("ecosim/pn-dgc/signing-key/{seed}/{n}"));
                SigningKey::from_bytes(&d).ok()
            })
            .ok_or_else(|| SignerError("no valid scalar".into()))?;
        let err = |e: &dyn std::fmt::Display| SignerError(e.to_string());
        // 2021-01-01 to 2031-01-01, fixed so the certificate is the same on every run.
        let at = |secs: u64| UtcTime::from_unix_duration(Duration::from_secs(secs)).map(Time::UtcTime);
        let validity = Validity {
            not_before: at(1_609_459_200).map_err(|e| err(&e))?,
            not_after: at(1_924_992_000).map_err(|e| err(&e))?,
        };
        let subject = Name::from_str(SUBJECT).map_err(|e| err(&e))?;
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).map_err(|e| err(&e))?;
        let serial = SerialNumber::new(&seed.to_be_bytes()[..]).map_err(|e| err(&e))?;
        let builder =
            CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, &key).map_err(|e| err(&e))?;
        let cert = builder.build::<DerSignature>().map_err(|e| err(&e))?;
        let der = cert.to_der().map_err(|e| err(&e))?;
        let pem = cert.to_pem(LineEnding::LF).map_err(|e| err(&e))?;
        let digest = Sha256::digest(&der);
        let mut kid = [0u8; 8];
        kid.copy_from_slice(&digest[..8]);
        Ok(Self { key, der, pem, kid })
    }

    /// ES256 over `message`: the raw 64-byte `r || s` COSE wants.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig: Signature = self.key.sign(message);
        sig.to_bytes().to_vec()
    }

    /// The key identifier.
    pub fn kid(&self) -> [u8; 8] {
        self.kid
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.pem
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use x509_cert::Certificate;
    use x509_cert::der::Decode;

    #[test]
    fn same_seed_same_certificate_and_the_kid_is_its_hash() {
        let a = Signer::from_seed(42).unwrap();
        let b = Signer::from_seed(42).unwrap();
        let c = Signer::from_seed(43).unwrap();
        assert_eq!(a.certificate_der(), b.certificate_der());
        assert_ne!(a.certificate_der(), c.certificate_der());
        assert_eq!(a.kid()[..], Sha256::digest(a.certificate_der())[..8]);
        assert!(a.certificate_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn signatures_verify_with_the_certificate_key() {
        let s = Signer::from_seed(7).unwrap();
        let cert = Certificate::from_der(s.certificate_der()).unwrap();
        let spki = cert.tbs_certificate.subject_public_key_info;
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap();
        let sig = Signature::from_slice(&s.sign(b"hello")).unwrap();
        key.verify(b"hello", &sig).unwrap();
        assert!(key.verify(b"hellO", &sig).is_err());
    }
}
