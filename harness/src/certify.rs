//! Certification of a vendor's SAR and/or AVR: the suite of the profile, run against
//! the vendor's systems, judged requirement by requirement, written as a signed bundle.
//!
//! The suite is `scenarios/certification/sar/` and `.../avr/`, built into the binary
//! (so an installed `ecosim` certifies with exactly the files of its version); a
//! `--suite DIR` replaces it. Only the requirements of the profile are judged: a SAR
//! certification shows the AVR's and the national systems' ids as "not applicable".
//!
//! The bundle (`--out DIR`):
//!
//! | file | what |
//! |---|---|
//! | `report.html`, `report.json`, `report.md`, `junit.xml` | the run, with the profile, the SUT and a verdict per requirement |
//! | `journal.jsonl` | every exchange of the run, one JSON object a line |
//! | `manifest.json` | ecosim's version and commit, seed, profile, vendor/product/version, SUT URLs, start and end, the SHA-256 of every scenario and every other file, the verdicts and the steps that decided them, the public key |
//! | `manifest.sig` | the Ed25519 signature of `manifest.json`'s bytes, hex |
//!
//! [`verify`] checks a bundle: every hash, and the signature (with the key in the
//! manifest, or one the caller pins).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ecosim_reports::{Certification, Outcome, Profile, RunReport, Verdict, coverage};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ecosystem::Ecosystem;
use crate::scenario::run::{Progress, Suts, run_loaded_on};
use crate::scenario::{Scenario, parse};

include!(concat!(env!("OUT_DIR"), "/suite.rs"));

/// The commit this binary was built from (`unknown` outside a git checkout).
pub const GIT_COMMIT: &str = env!("ECOSIM_GIT_COMMIT");

/// The format of `manifest.json`.
pub const MANIFEST_FORMAT: &str = "ecosim-certification/1";

/// One scenario file of the suite: where it came from, its text, its hash.
#[derive(Debug, Clone)]
pub struct SuiteFile {
    /// `certification/sar/retry.yaml`.
    pub path: String,
    /// The file's text.
    pub text: String,
}

/// The scenario files that certify `profile`: the built-in suite, or those under
/// `dir` (its `sar/` and `avr/` folders).
pub fn suite(profile: Profile, dir: Option<&Path>) -> anyhow::Result<Vec<SuiteFile>> {
    let wanted = |path: &str| {
        let actor = if path.contains("/sar/") || path.starts_with("sar/") {
            ecosim_reports::Actor::Sar
        } else if path.contains("/avr/") || path.starts_with("avr/") {
            ecosim_reports::Actor::Avr
        } else {
            return false;
        };
        profile.certifies(actor)
    };
    let files: Vec<SuiteFile> = match dir {
        None => SUITE
            .iter()
            .filter(|(p, _)| wanted(p))
            .map(|(p, t)| SuiteFile { path: (*p).to_owned(), text: (*t).to_owned() })
            .collect(),
        Some(dir) => {
            let found = crate::scenario::discover(&[dir.to_owned()])?;
            let mut out = Vec::new();
            for f in found {
                let rel = f.strip_prefix(dir).unwrap_or(&f).to_string_lossy().replace('\\', "/");
                if wanted(&rel) {
                    let text = std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
                    out.push(SuiteFile { path: format!("certification/{rel}"), text });
                }
            }
            out
        }
    };
    anyhow::ensure!(!files.is_empty(), "no certification scenarios for profile {}", profile.name());
    Ok(files)
}

/// Who and what is certified.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The vendor systems' URLs.
    pub suts: Suts,
    /// The profile.
    pub profile: Profile,
    /// Vendor name.
    pub vendor: Option<String>,
    /// Product name.
    pub product: Option<String>,
    /// Product version.
    pub version: Option<String>,
}

impl Subject {
    /// The profile the given systems imply: a SAR only -> `sar`, an AVR only -> `avr`,
    /// both -> `sar+avr`.
    pub fn implied_profile(suts: &Suts) -> Option<Profile> {
        match (suts.sar.is_some(), suts.avr.is_some()) {
            (true, false) => Some(Profile::Sar),
            (false, true) => Some(Profile::Avr),
            (true, true) => Some(Profile::SarAvr),
            (false, false) => None,
        }
    }
}

/// A finished certification run.
#[derive(Debug, Clone)]
pub struct Certified {
    /// The run, with its certification block.
    pub report: RunReport,
    /// The suite that ran.
    pub files: Vec<SuiteFile>,
    /// Real start and end.
    pub started: jiff::Timestamp,
    /// See `started`.
    pub finished: jiff::Timestamp,
}

impl Certified {
    /// Every requirement of the profile passed.
    pub fn passed(&self) -> bool {
        coverage(&self.report)
            .iter()
            .filter(|r| r.verdict != Verdict::NotApplicable)
            .all(|r| r.verdict == Verdict::Passed)
    }
}

/// Runs the suite `files` against `subject` on `eco` (national systems already
/// listening where the vendor's systems reach them).
pub async fn run(
    eco: &Ecosystem,
    subject: &Subject,
    files: Vec<SuiteFile>,
    progress: Option<Progress>,
) -> anyhow::Result<Certified> {
    let mut loaded: Vec<(PathBuf, Scenario)> = Vec::new();
    for f in &files {
        let path = PathBuf::from("scenarios").join(&f.path);
        loaded.push((path.clone(), parse(&path, &f.text)?));
    }
    let started = jiff::Timestamp::now();
    let mut report = run_loaded_on(eco, &loaded, &subject.suts, progress).await;
    let finished = jiff::Timestamp::now();
    report.certification = Some(Certification {
        profile: subject.profile,
        sut: subject.suts.map(),
        vendor: subject.vendor.clone(),
        product: subject.product.clone(),
        version: subject.version.clone(),
    });
    Ok(Certified { report, files, started, finished })
}

/// One file of a bundle and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHash {
    /// The path (bundle-relative, or under `scenarios/` for scenario files).
    pub path: String,
    /// SHA-256, hex.
    pub sha256: String,
}

/// One requirement's verdict in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequirementVerdict {
    /// The id.
    pub id: String,
    /// Who must satisfy it.
    pub actor: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The steps that decided it.
    pub steps: Vec<ecosim_reports::DecidingStep>,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// ecosim's version.
    pub ecosim_version: String,
    /// The commit it was built from.
    pub ecosim_commit: String,
    /// The seed.
    pub seed: u64,
    /// What was certified.
    pub certification: Certification,
    /// Real start, RFC 3339.
    pub started_at: String,
    /// Real end, RFC 3339.
    pub finished_at: String,
    /// `passed` when every requirement of the profile passed, else `failed`.
    pub result: String,
    /// Every scenario file that ran, with its hash.
    pub scenarios: Vec<FileHash>,
    /// Every other file of the bundle, with its hash.
    pub files: Vec<FileHash>,
    /// Every requirement of the catalogue with its verdict.
    pub requirements: Vec<RequirementVerdict>,
    /// The Ed25519 public key that signed `manifest.json`, hex.
    pub public_key: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The signing key in `file` (64 hex characters: the 32-byte secret); created, with
/// a new random key, when the file does not exist yet.
pub fn load_or_create_key(file: &Path) -> anyhow::Result<(SigningKey, bool)> {
    if file.exists() {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let bytes = hex::decode(text.trim()).with_context(|| format!("{}: not hex", file.display()))?;
        let secret: [u8; 32] = bytes.try_into().map_err(|_| {
            anyhow::anyhow!("{}: an Ed25519 secret key is 32 bytes (64 hex characters)", file.display())
        })?;
        return Ok((SigningKey::from_bytes(&secret), false));
    }
    let key = generate_key()?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(file, hex::encode(key.to_bytes()) + "\n")
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok((key, true))
}

/// A new random signing key.
pub fn generate_key() -> anyhow::Result<SigningKey> {
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).map_err(|e| anyhow::anyhow!("no randomness for a signing key: {e}"))?;
    Ok(SigningKey::from_bytes(&secret))
}

/// Writes the bundle of `done` into `out`: reports, the journal since `first_seq`,
/// `manifest.json` and `manifest.sig`. Returns the manifest.
pub fn write_bundle(eco: &Ecosystem, done: &Certified, out: &Path, key: &SigningKey) -> anyhow::Result<Manifest> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let report = &done.report;
    let mut journal = String::new();
    for e in eco.context().journal().since(0).exchanges {
        journal.push_str(&serde_json::to_string(&e)?);
        journal.push('\n');
    }
    let files: Vec<(&str, String)> = vec![
        ("report.html", ecosim_reports::html(report)),
        ("report.json", ecosim_reports::json(report)),
        ("report.md", ecosim_reports::markdown(report)),
        ("junit.xml", ecosim_reports::junit(report)),
        ("journal.jsonl", journal),
    ];
    let mut hashes = Vec::new();
    for (name, text) in &files {
        std::fs::write(out.join(name), text).with_context(|| format!("cannot write {name}"))?;
        hashes.push(FileHash { path: (*name).to_owned(), sha256: sha256_hex(text.as_bytes()) });
    }
    let certification = report.certification.clone().context("not a certification run")?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        ecosim_version: env!("CARGO_PKG_VERSION").into(),
        ecosim_commit: GIT_COMMIT.into(),
        seed: report.seed,
        certification,
        started_at: done.started.to_string(),
        finished_at: done.finished.to_string(),
        result: if done.passed() { "passed" } else { "failed" }.into(),
        scenarios: done
            .files
            .iter()
            .map(|f| FileHash { path: format!("scenarios/{}", f.path), sha256: sha256_hex(f.text.as_bytes()) })
            .collect(),
        files: hashes,
        requirements: coverage(report)
            .into_iter()
            .map(|r| RequirementVerdict {
                id: r.requirement.id.to_owned(),
                actor: r.requirement.actor_text.to_owned(),
                verdict: r.verdict,
                steps: r.steps,
            })
            .collect(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
    };
    let bytes = serde_json::to_vec_pretty(&manifest)?;
    std::fs::write(out.join("manifest.json"), &bytes).context("cannot write manifest.json")?;
    let signature = key.sign(&bytes);
    std::fs::write(out.join("manifest.sig"), hex::encode(signature.to_bytes()) + "\n")
        .context("cannot write manifest.sig")?;
    Ok(manifest)
}

/// Why a bundle does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A file is missing or unreadable.
    #[error("{0}: {1}")]
    Unreadable(String, String),
    /// `manifest.json` is not a manifest.
    #[error("manifest.json is not an ecosim certification manifest: {0}")]
    Manifest(String),
    /// The signature does not match the manifest (or the key).
    #[error("manifest.sig: the signature does not match manifest.json with key {0}")]
    Signature(String),
    /// The manifest was signed by another key than the one pinned.
    #[error("manifest.json names key {found}, not the expected {expected}")]
    Key {
        /// The manifest's.
        found: String,
        /// The pinned one.
        expected: String,
    },
    /// A file's hash differs from the manifest's.
    #[error("{0}: its SHA-256 is not the one in manifest.json (the file was changed)")]
    Hash(String),
}

/// Checks the bundle in `dir`: the signature of `manifest.json` (by `pinned` if
/// given, else by the key the manifest names) and every file's hash.
pub fn verify(dir: &Path, pinned: Option<&str>) -> Result<Manifest, VerifyError> {
    let read =
        |name: &str| std::fs::read(dir.join(name)).map_err(|e| VerifyError::Unreadable(name.into(), e.to_string()));
    let bytes = read("manifest.json")?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| VerifyError::Manifest(e.to_string()))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(VerifyError::Manifest(format!("format {:?}", manifest.format)));
    }
    let key_hex = pinned.map(str::to_owned).unwrap_or_else(|| manifest.public_key.clone());
    if key_hex != manifest.public_key {
        return Err(VerifyError::Key { found: manifest.public_key.clone(), expected: key_hex });
    }
    let key = hex::decode(&key_hex)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| VerifyError::Signature(key_hex.clone()))?;
    let sig_text = read("manifest.sig")?;
    let signature = hex::decode(String::from_utf8_lossy(&sig_text).trim())
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b))
        .ok_or_else(|| VerifyError::Signature(key_hex.clone()))?;
    key.verify(&bytes, &signature).map_err(|_| VerifyError::Signature(key_hex.clone()))?;
    for f in &manifest.files {
        if sha256_hex(&read(&f.path)?) != f.sha256 {
            return Err(VerifyError::Hash(f.path.clone()));
        }
    }
    Ok(manifest)
}

/// The verdicts of the profile's requirements, as a table for a terminal.
pub fn verdict_table(report: &RunReport) -> String {
    let mut out = String::from("requirement   actor      verdict         decided by\n");
    for r in coverage(report).into_iter().filter(|r| r.verdict != Verdict::NotApplicable) {
        let at = |outcome: Outcome| -> Vec<String> {
            r.steps
                .iter()
                .filter(|s| s.outcome == outcome)
                .map(|s| match s.line {
                    Some(l) => format!("{}:{l}", s.file),
                    None => s.file.clone(),
                })
                .collect()
        };
        let (failed, unreached) = (at(Outcome::Failed), at(Outcome::Skipped));
        let by = match (failed.is_empty(), unreached.is_empty()) {
            (true, true) => format!("{} step(s)", r.steps.len()),
            (false, true) => format!("failed at {}", failed.join(", ")),
            (true, false) => format!("not reached at {}", unreached.join(", ")),
            (false, false) => format!("failed at {}; not reached at {}", failed.join(", "), unreached.join(", ")),
        };
        let mark = match r.verdict {
            Verdict::Passed => "PASS",
            _ => "FAIL",
        };
        out.push_str(&format!(
            "{mark} {:<12} {:<10} {:<15} {by}\n",
            r.requirement.id,
            r.requirement.actor_text,
            r.verdict.label()
        ));
    }
    out
}

/// The requirement ids of the profile, with their verdicts.
pub fn verdicts(report: &RunReport) -> BTreeMap<String, Verdict> {
    coverage(report)
        .into_iter()
        .filter(|r| r.verdict != Verdict::NotApplicable)
        .map(|r| (r.requirement.id.to_owned(), r.verdict))
        .collect()
}
