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

/// Every `.route(path, method(..).method(..))` a simulator's `lib.rs` registers, as
/// `METHOD path`: read from the source, so a route added to the code shows up here
/// without anyone remembering to list it.
fn routes_in_code(crate_dir: &str) -> std::collections::BTreeSet<String> {
    let file = format!("{}/../simulators/{crate_dir}/src/lib.rs", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let route = regex::Regex::new(r#"\.route\(\s*"([^"]+)"\s*,"#).expect("pattern");
    let method = regex::Regex::new(r"(?:^|[\s.(])(get|post|put|patch|delete)\(").expect("pattern");
    let starts: Vec<_> =
        route.captures_iter(&source).map(|c| (c.get(0).expect("match").end(), c[1].to_owned())).collect();
    let mut out = std::collections::BTreeSet::new();
    for (i, (start, path)) in starts.iter().enumerate() {
        // The method routers stand between this route's path and the next route
        // (or the end of the chain).
        let rest = &source[*start..];
        let end = starts.get(i + 1).map_or_else(|| rest.find(';').unwrap_or(rest.len()), |(next, _)| next - start);
        let methods: Vec<_> = method.captures_iter(&rest[..end]).map(|c| c[1].to_ascii_uppercase()).collect();
        assert!(!methods.is_empty(), "{file}: no method found for {path}");
        out.extend(methods.into_iter().map(|m| format!("{m} {path}")));
    }
    out
}

#[test]
fn every_route_in_the_code_is_documented_and_every_documented_one_exists() {
    let dirs = [
        ("sistema-ts", "sistema-ts"),
        ("immuni", "immuni"),
        ("avn", "avn"),
        ("pn-dgc", "pn-dgc"),
        ("sms-gateway", "sms-gateway"),
        ("sar", "sar"),
    ];
    let mut wrong = Vec::new();
    for ((system, doc), (_, dir)) in documents().into_iter().zip(dirs) {
        let code = routes_in_code(dir);
        assert!(code.len() >= 3, "{system}: only {code:?} found in the source");
        let mut documented = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    documented.insert(format!("{} {path}", method.to_ascii_uppercase()));
                }
            }
        }
        wrong.extend(code.difference(&documented).map(|op| format!("{system}: {op} is served but not documented")));
        wrong.extend(documented.difference(&code).map(|op| format!("{system}: {op} is documented but not served")));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
