//! The real Immuni backend's own test suites, replayed case by case against the
//! simulator: every parametrised case of `immuni-backend-exposure-ingestion`
//! `tests/test_upload.py` and `immuni-backend-otp` `tests/test_apis/test_otp.py`,
//! their requests and the answers they expect (ported as data, not as code).
//!
//! Translation rules, the only liberties taken:
//! - "today" and "now" are the simulator's virtual clock (the real tests use the
//!   wall clock, which is the real backend's clock);
//! - the `otp` fixture (an OTP the real tests write straight into Redis) is an OTP
//!   authorised through `POST /v1/otp` as Sistema TS does, and the bearer is its
//!   hash (the real tests use `sha256("12345")`, which is not a valid OTP);
//! - calls to `/v1/otp` carry Sistema TS's service credentials (the real transport
//!   is mutual TLS);
//! - the `store` failure the OTP suite patches in is an injected fault (status 500);
//! - what the real tests read from MongoDB (`Upload.objects`) is read from
//!   `GET /_admin/uploads`, and Redis's deleted OTP is a second check-otp's 401;
//! - ecosim's own throttle of failed app checks per client (not in the real
//!   backend, which left it to the infrastructure in front) is off: the suites make
//!   hundreds of failed checks from one address in a second.
//!
//! Wherever the real backend raises one of its exceptions, the body it sends is that
//! exception's `{"error_code","message"}`: the cases compare the whole body.

use ecosim_core::System;
use ecosim_core::config::Config;
use ecosim_core::simulator::{Spawned, spawn};
use ecosim_domain::codes::sha256_hex;
use ecosim_immuni::Immuni;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The OTP the `otp` fixture authorises (`_VALID_JSON` of the OTP suite).
const FIXTURE_OTP: &str = "KJ23IWY5UJ";
const CONTENT_TYPE: &str = "application/json; charset=UTF-8";
const UPLOAD: &str = "/v1/ingestion/upload";
const CHECK_OTP: &str = "/v1/ingestion/check-otp";
const OTP: &str = "/v1/otp";

/// Which Immuni a case runs against (the real suite patches the dummy error chance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Instance {
    Default,
    DummyNeverFails,
    DummyAlwaysFails,
}

/// What a case checks of Immuni's state afterwards.
#[derive(Debug, Clone, PartialEq)]
enum After {
    Nothing,
    /// No upload stored.
    NoUpload,
    /// One upload, with exactly these keys, the fixture's symptom date, and the OTP spent.
    Upload(Vec<Value>),
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    instance: Instance,
    /// Authorise the fixture OTP first.
    otp: bool,
    /// Make the call fail inside Immuni (the suite's patched `store`).
    store_fails: bool,
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    /// Raw body; `None`: no body at all.
    body: Option<String>,
    status: u16,
    after: After,
}

/// The fixtures of `test_upload.py`, at the simulator's clock.
struct Fixtures {
    now: i64,
    today: String,
}

impl Fixtures {
    fn bearer(&self) -> String {
        sha256_hex(FIXTURE_OTP)
    }

    /// `headers`: dummy 0 and the client clock.
    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("Immuni-Dummy-Data", "0".into()), ("Immuni-Client-Clock", self.now.to_string())]
    }

    /// `auth_headers`: `headers` plus the bearer.
    fn auth_headers(&self) -> Vec<(&'static str, String)> {
        let mut h = self.headers();
        h.push(("Authorization", format!("Bearer {}", self.bearer())));
        h
    }

    fn with_content_type(mut h: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
        h.push(("Content-Type", CONTENT_TYPE.into()));
        h
    }

    /// `UPLOAD_DATA`: 14 keys `int((now - i days) / 600)`, one summary of today.
    fn upload_data(&self) -> Value {
        let teks: Vec<Value> = (0..14)
            .map(|i| {
                json!({
                    "key_data": key(16, i),
                    "rolling_start_number": (self.now - i64::from(i) * 86_400) / 600,
                    "rolling_period": 144,
                })
            })
            .collect();
        json!({
            "province": "AG",
            "padding": "4dd16",
            "exposure_detection_summaries": [{
                "date": self.today,
                "matched_key_count": 2,
                "days_since_last_exposure": 1,
                "attenuation_durations": [300, 0, 0],
                "maximum_risk_score": 4,
                "exposure_info": [{
                    "date": "2020-05-16",
                    "duration": 5,
                    "attenuation_value": 45,
                    "attenuation_durations": [300, 0, 0],
                    "transmission_risk_level": 1,
                    "total_risk_score": 4,
                }],
            }],
            "teks": teks,
        })
    }
}

/// `generate_random_key_data(size)`: base64 of `size` bytes (distinct per `n`).
fn key(size: usize, n: u32) -> String {
    use base64::Engine;
    let bytes: Vec<u8> = (0..size).map(|i| (i as u32 * 31 + n * 7 + 1) as u8).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn case(name: impl Into<String>, method: &'static str, path: &'static str, status: u16) -> Case {
    Case {
        name: name.into(),
        instance: Instance::Default,
        otp: false,
        store_fails: false,
        method,
        path,
        headers: Vec::new(),
        body: None,
        status,
        after: After::Nothing,
    }
}

impl Case {
    fn headers(mut self, h: Vec<(&'static str, String)>) -> Self {
        self.headers = h;
        self
    }
    fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string());
        // aiohttp's `json=` sets the content type when the test does not.
        if !self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            self.headers.push(("Content-Type", "application/json".into()));
        }
        self
    }
    fn otp(mut self) -> Self {
        self.otp = true;
        self
    }
    fn after(mut self, after: After) -> Self {
        self.after = after;
        self
    }
}

/// Every case of `tests/test_upload.py` (immuni-backend-exposure-ingestion).
fn upload_suite(f: &Fixtures) -> Vec<Case> {
    let mut cases = Vec::new();
    let data = f.upload_data();
    let ct = Fixtures::with_content_type;

    let mut dummy = ct(f.auth_headers());
    dummy[0].1 = "1".into();
    cases.push(
        case("test_dummy_data_upload", "POST", UPLOAD, 204).headers(dummy.clone()).json(&data).after(After::NoUpload),
    );
    let mut c = case("test_dummy_data_check_otp_success", "POST", CHECK_OTP, 204)
        .headers(dummy.clone())
        .json(&json!({"padding": "4dd1"}))
        .after(After::NoUpload);
    c.instance = Instance::DummyNeverFails;
    cases.push(c);
    let mut c = case("test_dummy_data_check_otp_fail", "POST", CHECK_OTP, 401)
        .headers(dummy)
        .json(&json!({"padding": "4dd1"}))
        .after(After::NoUpload);
    c.instance = Instance::DummyAlwaysFails;
    cases.push(c);

    // bad_data: None, json.dumps({}), and UPLOAD_DATA without each key, sent as
    // `json=` of the dumped string (a JSON string), without a bearer.
    let mut bad: Vec<(String, Option<Value>)> = vec![("None".into(), None), ("Empty Dict".into(), Some(json!("{}")))];
    for excluded in ["province", "padding", "exposure_detection_summaries", "teks"] {
        let mut d = data.clone();
        d.as_object_mut().map(|o| o.remove(excluded));
        bad.push((excluded.into(), Some(Value::String(d.to_string()))));
    }
    for (label, body) in bad {
        let mut c = case(format!("test_upload_bad_request_body[{label}]"), "POST", UPLOAD, 400)
            .headers(ct(f.headers()))
            .after(After::NoUpload);
        if let Some(b) = body {
            c = c.json(&b);
        }
        cases.push(c);
    }
    for province in [json!("asd"), json!("ROMA"), Value::Null] {
        let mut d = data.clone();
        d["province"] = province.clone();
        cases.push(
            case(format!("test_invalid_province[{province}]"), "POST", UPLOAD, 400).headers(ct(f.headers())).json(&d),
        );
    }
    for header in ["other", "boh", ""] {
        let mut h = ct(f.headers());
        h[0].1 = header.into();
        cases.push(
            case(format!("test_upload_bad_request_dummy_header[{header:?}]"), "POST", UPLOAD, 400)
                .headers(h)
                .json(&data)
                .after(After::NoUpload),
        );
    }
    for endpoint in [UPLOAD, CHECK_OTP] {
        for token in ["asd", "12345", "abcdefghijklmnopqrstuvwxy"] {
            let mut h = ct(f.auth_headers());
            h[2].1 = format!("Bearer {token}");
            cases.push(
                case(format!("test_bad_auth_token_raises_validation_error[{endpoint}-{token}]"), "POST", endpoint, 400)
                    .headers(h)
                    .json(&data),
            );
        }
    }
    for missing in ["Immuni-Dummy-Data", "Immuni-Client-Clock"] {
        let h = ct(f.headers()).into_iter().filter(|(k, _)| *k != missing).collect();
        cases.push(
            case(format!("test_upload_without_headers[{missing}]"), "POST", UPLOAD, 400)
                .headers(h)
                .after(After::NoUpload),
        );
    }
    let h = ct(f.headers()).into_iter().filter(|(k, _)| *k != "Immuni-Dummy-Data").collect();
    cases.push(
        case("test_check_otp_without_headers[Immuni-Dummy-Data]", "POST", CHECK_OTP, 400)
            .headers(h)
            .after(After::NoUpload),
    );
    cases.push(
        case("test_upload_otp_check_fail", "POST", CHECK_OTP, 401)
            .headers(ct(f.auth_headers()))
            .json(&json!({"padding": "4dd1"}))
            .after(After::NoUpload),
    );
    cases.push(
        case("test_upload_otp_check_pass", "POST", CHECK_OTP, 204)
            .otp()
            .headers(ct(f.auth_headers()))
            .json(&json!({"padding": "4dd1"}))
            .after(After::NoUpload),
    );

    let mut many = data.clone();
    for i in 0..14 {
        if let Some(t) = many["teks"].as_array_mut() {
            t.push(json!({"key_data": key(16, 100 + i), "rolling_start_number": 12345, "rolling_period": 144}));
        }
    }
    cases.push(
        case("test_upload_too_many_keys", "POST", UPLOAD, 400)
            .otp()
            .headers(ct(f.auth_headers()))
            .json(&many)
            .after(After::NoUpload),
    );
    let mut shifted = data.clone();
    let n = shifted["teks"][1]["rolling_start_number"].as_i64().unwrap_or_default();
    shifted["teks"][1]["rolling_start_number"] = json!(n + 10);
    cases.push(
        case("test_upload_invalid_start_numbers", "POST", UPLOAD, 204)
            .otp()
            .headers(ct(f.auth_headers()))
            .json(&shifted)
            .after(After::Upload(Vec::new())),
    );
    for length in [0usize, 1, 15, 17, 100] {
        let mut d = data.clone();
        d["teks"] = (0..14).map(|i| json!({"key_data": key(length, i), "rolling_start_number": 12345})).collect();
        cases.push(
            case(format!("test_upload_keys_with_wrong_length[{length}]"), "POST", UPLOAD, 400)
                .otp()
                .headers(ct(f.auth_headers()))
                .json(&d),
        );
    }
    let mut d = data.clone();
    d["teks"] = Value::Null;
    cases.push(
        case("test_upload_keys_with_missing_teks", "POST", UPLOAD, 400).otp().headers(ct(f.auth_headers())).json(&d),
    );

    for remove_tek in std::iter::once(None).chain((0..14).map(Some)) {
        for include_teks in [true, false] {
            for include_summaries in [true, false] {
                for include_infos in [true, false] {
                    let mut d = data.clone();
                    if !include_infos {
                        d["exposure_detection_summaries"][0]["exposure_info"] = json!([]);
                    }
                    if !include_summaries {
                        d["exposure_detection_summaries"] = json!([]);
                    }
                    if let Some(i) = remove_tek {
                        d["teks"].as_array_mut().map(|t| t.remove(i));
                    }
                    if !include_teks {
                        d["teks"] = json!([]);
                    }
                    let keys = d["teks"].as_array().cloned().unwrap_or_default();
                    cases.push(
                        case(
                            format!("test_upload_otp_complete[{remove_tek:?}-{include_teks}-{include_summaries}-{include_infos}]"),
                            "POST",
                            UPLOAD,
                            204,
                        )
                        .otp()
                        .headers(ct(f.auth_headers()))
                        .json(&d)
                        .after(After::Upload(keys)),
                    );
                }
            }
        }
    }
    for (label, padding) in [("symbols", "\\asd*&!@#".to_owned()), ("too long", "a".repeat(150_001))] {
        let mut d = data.clone();
        d["padding"] = json!(padding);
        cases.push(
            case(format!("test_invalid_paddings_upload[{label}]"), "POST", UPLOAD, 400)
                .otp()
                .headers(f.auth_headers())
                .json(&d),
        );
        cases.push(
            case(format!("test_invalid_paddings_check_otp[{label}]"), "POST", CHECK_OTP, 400)
                .headers(f.auth_headers())
                .json(&json!({"padding": padding})),
        );
    }
    cases
}

/// Every case of `tests/test_apis/test_otp.py` (immuni-backend-otp).
fn otp_suite(f: &Fixtures) -> Vec<Case> {
    let valid = json!({"otp": FIXTURE_OTP, "symptoms_started_on": f.today});
    let valid_sha = json!({
        "otp": "b39e0733843b1b5d7c558f52f117a824dc41216e0c2bb671b3d79ba82105dd94",
        "symptoms_started_on": f.today,
        "id_test_verification": "2d8af3b9-2c0a-4efc-9e15-72454f994e1f",
    });
    let invalid = json!({
        "otp": "b39e0733843b1b5d7c558f52f117a824dc41216e0c2bb671b3d79ba82105dd94",
        "symptoms_started_on": f.today,
        "id_test_verification": null,
    });
    let ct = || vec![("Content-Type", "application/json; charset=utf-8".to_owned())];
    let mut cases = Vec::new();
    for (label, body) in [("_VALID_JSON", &valid), ("_VALID_JSON_SHA", &valid_sha)] {
        cases.push(case(format!("test_otp_success[{label}]"), "POST", OTP, 204).headers(ct()).json(body));
        for method in ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "PUT"] {
            for has_json in [true, false] {
                let mut c = case(format!("test_otp_method_not_allowed[{label}-{method}-{has_json}]"), method, OTP, 405)
                    .headers(ct());
                if has_json {
                    c = c.json(body);
                }
                cases.push(c);
            }
        }
        let mut c = case(format!("test_otp_store_failure[{label}]"), "POST", OTP, 500).headers(ct()).json(body);
        c.store_fails = true;
        cases.push(c);
    }
    cases.push(case("test_otp_missing_json", "POST", OTP, 400).headers(ct()));
    cases.push(case("test_otp_invalid_json", "POST", OTP, 400).headers(ct()).json(&json!({"invalid": "json"})));
    cases.push(case("test_otp_invalid_length", "POST", OTP, 400).headers(ct()).json(&invalid));
    cases
}

/// The body the real backend sends with `status` (its exception handler), `None`
/// where it sends none or the suite does not say.
fn real_body(status: u16) -> Option<Value> {
    let (code, message) = match status {
        400 => (1001, "Request not compliant with the defined schema."),
        401 => (1101, "Unauthorized OTP."),
        409 => (1400, "OTP already authorized."),
        500 => (1000, "An unknown error occurred."),
        _ => return None,
    };
    Some(json!({"error_code": code, "message": message}))
}

async fn immuni(dummy_error_percent: u8, his: &MockServer) -> Spawned<Immuni> {
    let mut config = Config::for_tests(42);
    config.set_url(System::SistemaTs, his.uri());
    config.immuni.dummy_error_percent = dummy_error_percent;
    config.immuni.failed_checks_per_client = 0;
    spawn::<Immuni>(config).await.expect("Immuni starts")
}

/// Runs one case; `Err` says how the simulator's answer differs from the real one.
async fn run(im: &Spawned<Immuni>, f: &Fixtures, c: &Case) -> Result<(), String> {
    let http = reqwest::Client::new();
    let admin = |path: &str| http.post(format!("{}/_admin{path}", im.url));
    admin("/reset").send().await.map_err(|e| format!("reset: {e}"))?;
    let sistema_ts = im.ctx.accounts().get("sistema-ts").cloned().ok_or("no sistema-ts account")?;
    if c.otp {
        let res = http
            .post(format!("{}{OTP}", im.url))
            .basic_auth(&sistema_ts.name, Some(&sistema_ts.password))
            .json(&json!({"otp": FIXTURE_OTP, "symptoms_started_on": f.today}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if res.status() != 204 {
            return Err(format!("the otp fixture was answered {}", res.status()));
        }
    }
    if c.store_fails {
        let rule = json!({"match": {"method": "POST", "path": OTP}, "action": {"status": 500}, "times": 1});
        admin("/faults").json(&rule).send().await.map_err(|e| format!("fault: {e}"))?;
    }
    let method = reqwest::Method::from_bytes(c.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = http.request(method, format!("{}{}", im.url, c.path));
    if c.path == OTP {
        req = req.basic_auth(&sistema_ts.name, Some(&sistema_ts.password));
    }
    for (k, v) in &c.headers {
        req = req.header(*k, v);
    }
    if let Some(b) = &c.body {
        req = req.body(b.clone());
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let no_store = res.headers().get("cache-control").is_some_and(|v| v == "no-store");
    let text = res.text().await.unwrap_or_default();
    if c.store_fails {
        http.delete(format!("{}/_admin/faults", im.url)).send().await.map_err(|e| e.to_string())?;
    }
    if status != c.status {
        return Err(format!("status {status}, the real backend {}: {text}", c.status));
    }
    match real_body(status) {
        Some(want) => {
            let got: Value = serde_json::from_str(&text).map_err(|_| format!("body {text:?} is not Immuni's JSON"))?;
            if got != want {
                return Err(format!("body {got}, the real backend {want}"));
            }
        }
        None if status == 204 => {
            if !text.is_empty() {
                return Err(format!("204 with a body: {text:?}"));
            }
            if !no_store {
                return Err("204 without Cache-Control: no-store".into());
            }
        }
        None => {}
    }
    let uploads: Value = http
        .get(format!("{}/_admin/uploads", im.url))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let uploads = uploads["uploads"].as_array().cloned().unwrap_or_default();
    match &c.after {
        After::Nothing => {}
        After::NoUpload if !uploads.is_empty() => {
            return Err(format!("{} uploads stored, the real none", uploads.len()));
        }
        After::NoUpload => {}
        After::Upload(keys) => {
            let [upload] = uploads.as_slice() else {
                return Err(format!("{} uploads stored, the real one", uploads.len()));
            };
            if upload["teks"].as_array() != Some(keys) {
                return Err(format!("keys stored {}, the real {}", upload["teks"], json!(keys)));
            }
            if upload["symptoms_started_on"] != json!(f.today) {
                return Err(format!(
                    "symptoms_started_on {}, the fixture's {}",
                    upload["symptoms_started_on"], f.today
                ));
            }
            let again = http
                .post(format!("{}{CHECK_OTP}", im.url))
                .header("Authorization", format!("Bearer {}", f.bearer()))
                .header("Immuni-Dummy-Data", "0")
                .header("Content-Type", CONTENT_TYPE)
                .body("{}")
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if again.status() != 401 {
                return Err(format!("the OTP was not spent: check-otp after the upload answered {}", again.status()));
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_case_of_the_real_backends_own_suites_gets_the_real_answer() {
    let his = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&his)
        .await;
    let default = immuni(1, &his).await;
    let never = immuni(0, &his).await;
    let always = immuni(100, &his).await;
    let clock = default.ctx.clock();
    let f = Fixtures { now: clock.now().as_second(), today: clock.today().to_string() };
    let upload = upload_suite(&f);
    let otp = otp_suite(&f);
    // The suites' sizes, counted from their parametrisations: a changed port shows here.
    assert_eq!((upload.len(), otp.len()), (158, 31));
    let mut differences = Vec::new();
    for c in upload.iter().chain(&otp) {
        let im = match c.instance {
            Instance::Default => &default,
            Instance::DummyNeverFails => &never,
            Instance::DummyAlwaysFails => &always,
        };
        if let Err(why) = run(im, &f, c).await {
            differences.push(format!("{}: {why}", c.name));
        }
    }
    let total = upload.len() + otp.len();
    println!("{} of {total} cases of the real Immuni suites give the real answer", total - differences.len());
    assert!(differences.is_empty(), "{} of {total} cases differ:\n{}", differences.len(), differences.join("\n"));
}
