//! The signing chain, as the EU DCC trust framework has it: a **CSCA** (the country
//! signing CA, self-signed, keyCertSign + cRLSign) and a **DSC** (the document signer
//! certificate) it issues: key usage digitalSignature, the EU DCC extended key usages
//! for test, vaccination and recovery certificates, and `kid` = the first 8 bytes of
//! the SHA-256 of the DSC's DER (the EU DCC rule). Both keys are P-256, derived from
//! the seed: same seed, same chain. Both certificates are published
//! (`GET /v1/dgc/signer`), so any EU DCC verifier can check the chain and the
//! signature.

use std::str::FromStr;
use std::time::Duration;

use p256::ecdsa::{DerSignature, Signature, SigningKey, signature::Signer as _};
use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::{Curve, FieldBytesEncoding, PrimeField};
use p256::{AffinePoint, NistP256, ProjectivePoint, Scalar, U256};
use sha2::{Digest, Sha256};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::{ObjectIdentifier, UtcTime};
use x509_cert::der::{Encode, EncodePem, pem::LineEnding};
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

/// Subject of the document signer certificate (DSC).
pub const SUBJECT: &str = "CN=ecosim DSC IT 1,O=Ministero della Salute (ecosim),C=IT";
/// Subject (and issuer) of the country signing CA (CSCA).
pub const CSCA_SUBJECT: &str = "CN=ecosim CSCA IT,O=Ministero della Salute (ecosim),C=IT";

/// The EU DCC extended key usages a DSC may carry: which certificate types it signs.
pub const EKU_TEST: &str = "1.3.6.1.4.1.1847.2021.1.1";
/// Vaccination certificates.
pub const EKU_VACCINATION: &str = "1.3.6.1.4.1.1847.2021.1.2";
/// Recovery certificates.
pub const EKU_RECOVERY: &str = "1.3.6.1.4.1.1847.2021.1.3";

/// The signing key and its chain.
pub struct Signer {
    key: SigningKey,
    der: Vec<u8>,
    pem: String,
    csca_der: Vec<u8>,
    csca_pem: String,
    kid: [u8; 8],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &hex::encode(self.kid)).finish_non_exhaustive()
    }
}

/// Why the signer could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot make the signing certificates: {0}")]
pub struct SignerError(String);

fn err(e: &dyn std::fmt::Display) -> SignerError {
    SignerError(e.to_string())
}

/// A P-256 key derived from `seed` and `label`.
fn key_from(seed: u64, label: &str) -> Result<SigningKey, SignerError> {
    (0u32..)
        .find_map(|n| SigningKey::from_bytes(&Sha256::digest(format!("ecosim/pn-dgc/{label}/{seed}/{n}"))).ok())
        .ok_or_else(|| SignerError("no valid scalar".into()))
}

/// From `from` to `to` (Unix seconds), fixed so the chain is the same on every run.
fn validity(from: u64, to: u64) -> Result<Validity, SignerError> {
    let at = |secs: u64| UtcTime::from_unix_duration(Duration::from_secs(secs)).map(Time::UtcTime);
    Ok(Validity { not_before: at(from).map_err(|e| err(&e))?, not_after: at(to).map_err(|e| err(&e))? })
}

impl Signer {
    /// The signer of an ecosystem seeded with `seed`: same seed, same keys and chain.
    pub fn from_seed(seed: u64) -> Result<Self, SignerError> {
        let csca_key = key_from(seed, "csca-key")?;
        let key = key_from(seed, "signing-key")?;
        let csca_name = Name::from_str(CSCA_SUBJECT).map_err(|e| err(&e))?;

        // The CSCA: 2021-01-01 to 2036-01-01, self-signed.
        let csca_spki = SubjectPublicKeyInfoOwned::from_key(*csca_key.verifying_key()).map_err(|e| err(&e))?;
        let serial = SerialNumber::new(&[&[1u8][..], &seed.to_be_bytes()[..]].concat()).map_err(|e| err(&e))?;
        let csca = CertificateBuilder::new(
            Profile::Root,
            serial,
            validity(1_609_459_200, 2_082_758_400)?,
            csca_name.clone(),
            csca_spki,
            &csca_key,
        )
        .map_err(|e| err(&e))?
        .build::<DerSignature>()
        .map_err(|e| err(&e))?;

        // The DSC: 2021-01-01 to 2031-01-01, issued by the CSCA.
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).map_err(|e| err(&e))?;
        let serial = SerialNumber::new(&[&[2u8][..], &seed.to_be_bytes()[..]].concat()).map_err(|e| err(&e))?;
        let profile = Profile::Leaf { issuer: csca_name, enable_key_agreement: false, enable_key_encipherment: false };
        let subject = Name::from_str(SUBJECT).map_err(|e| err(&e))?;
        let mut builder =
            CertificateBuilder::new(profile, serial, validity(1_609_459_200, 1_924_992_000)?, subject, spki, &csca_key)
                .map_err(|e| err(&e))?;
        let usages = [EKU_TEST, EKU_VACCINATION, EKU_RECOVERY]
            .iter()
            .map(|oid| ObjectIdentifier::new(oid).map_err(|e| err(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        builder.add_extension(&ExtendedKeyUsage(usages)).map_err(|e| err(&e))?;
        let dsc = builder.build::<DerSignature>().map_err(|e| err(&e))?;

        let der = dsc.to_der().map_err(|e| err(&e))?;
        let pem = dsc.to_pem(LineEnding::LF).map_err(|e| err(&e))?;
        let digest = Sha256::digest(&der);
        let mut kid = [0u8; 8];
        kid.copy_from_slice(&digest[..8]);
        Ok(Self {
            key,
            der,
            pem,
            csca_der: csca.to_der().map_err(|e| err(&e))?,
            csca_pem: csca.to_pem(LineEnding::LF).map_err(|e| err(&e))?,
            kid,
        })
    }

    /// ES256 over `message`: the raw 64-byte `r || s` COSE wants. Deterministic
    /// (RFC 6979): the same bytes as `p256`'s own signing, 4 times faster
    /// ([`es256`]).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig = es256(&self.key, message).unwrap_or_else(|| self.key.sign(message));
        sig.to_bytes().to_vec()
    }

    /// The key identifier (from the DSC).
    pub fn kid(&self) -> [u8; 8] {
        self.kid
    }

    /// The document signer certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.der
    }

    /// The document signer certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.pem
    }

    /// The CSCA certificate that issued the DSC, DER.
    pub fn csca_der(&self) -> &[u8] {
        &self.csca_der
    }

    /// The CSCA certificate, PEM.
    pub fn csca_pem(&self) -> &str {
        &self.csca_pem
    }
}

/// Multiples of the P-256 base point G: row `i` holds `j * 16^i * G` for `j` in
/// 0..16 (64 rows, 64 KiB), so `k * G` is 64 additions of table points and no
/// doubling.
struct BaseTable(Vec<[AffinePoint; 16]>);

static BASE: std::sync::LazyLock<BaseTable> = std::sync::LazyLock::new(|| {
    let mut rows = Vec::with_capacity(64);
    let mut base = ProjectivePoint::GENERATOR;
    for _ in 0..64 {
        let mut row = [AffinePoint::IDENTITY; 16];
        let mut multiple = ProjectivePoint::IDENTITY;
        for point in row.iter_mut().skip(1) {
            multiple += base;
            *point = multiple.to_affine();
        }
        rows.push(row);
        for _ in 0..4 {
            base = base.double();
        }
    }
    BaseTable(rows)
});

impl BaseTable {
    /// `k * G`.
    fn times(&self, k: &Scalar) -> ProjectivePoint {
        let bytes = k.to_repr(); // big-endian
        let mut sum = ProjectivePoint::IDENTITY;
        for (i, row) in self.0.iter().enumerate() {
            let byte = bytes[31 - i / 2];
            let nibble = if i % 2 == 0 { byte & 0x0f } else { byte >> 4 };
            if nibble != 0 {
                sum += row[usize::from(nibble)];
            }
        }
        sum
    }
}

/// ECDSA P-256 with SHA-256 and RFC 6979's deterministic nonce, as `p256` signs
/// (the tests compare the bytes), with the nonce's point from [`BASE`] and the
/// nonce inverted in variable time: `p256`'s generic multiplication and
/// constant-time inversion made signing two thirds of PN-DGC's time on a peak day
/// (140 µs a signature; this takes about 32). Variable time leaks timing about the
/// nonce, which matters for real keys only: these are test keys derived from the
/// seed. `None` in the (astronomically unlikely) case of a zero `r` or `s`; the
/// caller then signs the generic way.
fn es256(key: &SigningKey, message: &[u8]) -> Option<Signature> {
    let d: &Scalar = key.as_nonzero_scalar().as_ref();
    let z = <Scalar as Reduce<U256>>::reduce_bytes(&Sha256::digest(message));
    let n = FieldBytesEncoding::<NistP256>::encode_field_bytes(&NistP256::ORDER);
    let k = Scalar::from_repr(rfc6979::generate_k::<Sha256, _>(&d.to_repr(), &n, &z.to_repr(), &[]));
    let k = Option::<Scalar>::from(k)?;
    let x = BASE.times(&k).to_affine().x();
    let r = <Scalar as Reduce<U256>>::reduce_bytes(&x);
    let k_inv = Option::<Scalar>::from(Invert::invert_vartime(&k))?;
    let s = k_inv * (z + r * d);
    Signature::from_scalars(r, s).ok()
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

    proptest::proptest! {
        #[test]
        fn es256_gives_the_bytes_of_p256s_own_deterministic_signing(
            message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            seed in 0u64..1_000,
        ) {
            let key = key_from(seed, "signing-key").unwrap();
            let expected: Signature = key.sign(&message);
            proptest::prop_assert_eq!(es256(&key, &message), Some(expected));
        }
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

    #[test]
    fn the_dsc_is_issued_by_the_csca_for_signing_dccs_only() {
        use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
        let s = Signer::from_seed(7).unwrap();
        let csca = Certificate::from_der(s.csca_der()).unwrap();
        let dsc = Certificate::from_der(s.certificate_der()).unwrap();
        assert_eq!(dsc.tbs_certificate.issuer, csca.tbs_certificate.subject);
        assert_eq!(csca.tbs_certificate.issuer, csca.tbs_certificate.subject, "the CSCA is self-signed");
        // The CSCA's key signed the DSC.
        let ca_key = p256::ecdsa::VerifyingKey::from_sec1_bytes(
            csca.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes(),
        )
        .unwrap();
        let tbs = dsc.tbs_certificate.to_der().unwrap();
        let sig = p256::ecdsa::DerSignature::from_bytes(dsc.signature.raw_bytes()).unwrap();
        ca_key.verify(&tbs, &sig).unwrap();
        let (_, ku) = dsc.tbs_certificate.get::<KeyUsage>().unwrap().unwrap();
        assert!(ku.0.contains(KeyUsages::DigitalSignature) && !ku.0.contains(KeyUsages::KeyCertSign));
        let (_, eku) = dsc.tbs_certificate.get::<ExtendedKeyUsage>().unwrap().unwrap();
        let oids: Vec<String> = eku.0.iter().map(|o| o.to_string()).collect();
        assert_eq!(oids, [EKU_TEST, EKU_VACCINATION, EKU_RECOVERY]);
        let (_, bc) = dsc.tbs_certificate.get::<BasicConstraints>().unwrap().unwrap();
        assert!(!bc.ca);
        let (_, ca_ku) = csca.tbs_certificate.get::<KeyUsage>().unwrap().unwrap();
        assert!(ca_ku.0.contains(KeyUsages::KeyCertSign));
    }
}
