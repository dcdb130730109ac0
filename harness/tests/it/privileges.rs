//! Least privilege: each service account may call only what its system calls in the
//! real flow (APIS.md); every other authenticated route answers it 403 naming what
//! is needed. A matrix over every route of every simulator's OpenAPI document and
//! every service account.

use ecosim_core::System;
use serde_json::Value;

use crate::support::spawn_ecosystem;

const SERVICES: [&str; 5] = ["immuni", "sistema-ts", "avn", "pn-dgc", "sar"];

/// The service accounts that may call `method path` of `system` (APIS.md).
fn allowed(system: System, method: &str, path: &str) -> &'static [&'static str] {
    match (system, method, path) {
        (System::Immuni, "POST", "/v1/otp") => &["sistema-ts"],
        (System::PnDgc, "POST", "/pn-dgc/v1/eventi") => &["sistema-ts"],
        (System::SistemaTs, "POST", "/ts/v1/avn/vaccinazioni") => &["avn"],
        (System::SistemaTs, "POST", "/his/v1/cun/verify" | "/his/v1/cun/invalidate") => &["immuni"],
        (System::SmsGateway, "POST", "/sms/v1/messages") | (System::SmsGateway, "GET", "/sms/v1/messages/{id}") => {
            &["sar", "sistema-ts", "pn-dgc"]
        }
        _ => &[],
    }
}

/// A concrete path for a templated one.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{regione}" | "{codice}" => "160".to_owned(),
            s if s.starts_with('{') => "X".to_owned(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_service_account_calls_only_what_its_system_calls_in_the_real_flow() {
    let t = spawn_ecosystem().await;
    let mut checked = 0;
    let mut wrong = Vec::new();
    for system in [System::SistemaTs, System::Immuni, System::Avn, System::PnDgc, System::SmsGateway, System::Sar] {
        let doc = t.get_json(system, "/openapi.json").await;
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for method in ops.as_object().expect("operations").keys() {
                let method = method.to_ascii_uppercase();
                if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                    continue;
                }
                let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
                let url = t.url(system, &concrete(path));
                let send = |account: Option<&str>| {
                    let mut req = t.http.request(m.clone(), &url);
                    if let Some(a) = account {
                        req = req.basic_auth(a, Some(format!("{a}-secret")));
                    }
                    if method != "GET" {
                        req = req.header("content-type", "application/json").body("{}");
                    }
                    req.send()
                };
                // Only routes that need credentials have anyone to keep out.
                if send(None).await.expect("answer").status() != 401 {
                    continue;
                }
                for account in SERVICES {
                    let res = send(Some(account)).await.expect("answer");
                    let status = res.status().as_u16();
                    // The HIS answers in its own shape, the reason in X-Ecosim-Detail.
                    let header = res.headers().get("x-ecosim-detail").and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let mut body: Value = res.json().await.unwrap_or(Value::Null);
                    if let Some(detail) = header {
                        body["detail"] = Value::String(detail);
                    }
                    let may = allowed(system, &method, path).contains(&account);
                    checked += 1;
                    let ok = if may {
                        status != 401 && status != 403
                    } else {
                        status == 403 && body["detail"].as_str().is_some_and(|d| d.contains("needs"))
                    };
                    if !ok {
                        wrong.push(format!("{account} -> {system} {method} {path}: {status} {body}"));
                    }
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} checks");
    assert!(wrong.is_empty(), "{} of {checked} wrong:\n{}", wrong.len(), wrong.join("\n"));
}
