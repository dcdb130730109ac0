//! The OpenAPI documents say what the code does, as rules every operation keeps
//! (schemathesis, in `.ci/run`, then fuzzes each against the running systems):
//! an operation that needs credentials lists 401; on the designed APIs (problem+json)
//! also 403, and 400/415 for a JSON body, 400 for parameters, and every error is
//! problem+json; the HIS answers in its own shape; the Immuni app's calls list 429.

use serde_json::Value;

fn documents() -> Vec<(&'static str, Value)> {
    [
        ("sistema-ts", ecosim_sistema_ts::OPENAPI),
        ("immuni", ecosim_immuni::OPENAPI),
        ("avn", ecosim_avn::OPENAPI),
        ("pn-dgc", ecosim_pn_dgc::OPENAPI),
        ("sms-gateway", ecosim_sms_gateway::OPENAPI),
        ("sar", ecosim_sar::OPENAPI),
    ]
    .into_iter()
    .map(|(name, text)| (name, serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))))
    .collect()
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => doc.pointer(pointer).unwrap_or(v),
        None => v,
    }
}

#[test]
fn every_operation_lists_the_refusals_the_code_makes() {
    let mut wrong = Vec::new();
    let mut operations = 0;
    for (system, doc) in documents() {
        let designed = system != "immuni";
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let his = path.starts_with("/his/");
            for (method, op) in item.as_object().expect("path item") {
                if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    continue;
                }
                operations += 1;
                let responses = op["responses"].as_object().expect("responses");
                let mut need = |status: &str, why: &str| {
                    if !responses.contains_key(status) {
                        wrong.push(format!("{system} {} {path}: no {status} ({why})", method.to_uppercase()));
                    }
                };
                let security = op.get("security").or_else(|| doc.get("security"));
                let authenticated = security
                    .and_then(Value::as_array)
                    .is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(|o| !o.is_empty())));
                if authenticated {
                    need("401", "it needs credentials");
                }
                if system == "immuni" && path.starts_with("/v1/ingestion/") {
                    need("429", "failed checks are throttled per client");
                }
                if !designed || his {
                    continue;
                }
                if authenticated {
                    need("403", "an account without the role");
                }
                if op.get("requestBody").is_some() {
                    need("400", "a malformed body");
                    need("415", "a body not declared JSON");
                }
                let params = op
                    .get("parameters")
                    .into_iter()
                    .chain(item.get("parameters"))
                    .flat_map(|p| p.as_array().into_iter().flatten());
                if params.into_iter().next().is_some() || path.contains('{') {
                    need("400", "a malformed parameter");
                }
                for (status, response) in responses {
                    let response = resolve(&doc, response);
                    let problem = response.get("content").and_then(|c| c.get("application/problem+json")).is_some();
                    if status.starts_with('4') && !problem {
                        wrong.push(format!("{system} {} {path}: {status} is not problem+json", method.to_uppercase()));
                    }
                }
            }
        }
    }
    assert!(operations > 40, "only {operations} operations");
    assert!(wrong.is_empty(), "{} gaps:\n{}", wrong.len(), wrong.join("\n"));
}
