//! Checking an answer against the OpenAPI document that describes it, for the
//! crates' own tests: [`undocumented`] lists every member an answer carries that
//! its schema does not allow (a schema with `additionalProperties: false`), and
//! every required member it lacks, following `$ref`s, `allOf`, object members and
//! array items. The documents are kept beside the code; this keeps them exact where
//! a test reads a real answer.

use serde_json::Value;

/// The schema of `status`'s `application/json` (or problem+json) answer to
/// `method path` in `doc`.
pub fn response_schema<'a>(doc: &'a Value, method: &str, path: &str, status: u16) -> Option<&'a Value> {
    let response = doc.pointer(&format!(
        "/paths/{}/{}/responses/{status}",
        path.replace('~', "~0").replace('/', "~1"),
        method.to_ascii_lowercase()
    ))?;
    let response = resolve(doc, response);
    let content = response.get("content")?.as_object()?;
    content.iter().find(|(t, _)| t.contains("json")).and_then(|(_, c)| c.get("schema"))
}

fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    while let Some(r) = v.get("$ref").and_then(Value::as_str) {
        match r.strip_prefix('#').and_then(|p| doc.pointer(p)) {
            Some(target) => v = target,
            None => break,
        }
    }
    v
}

/// What in `value` (at `at`) the `schema` of `doc` does not describe; empty when
/// the answer is documented exactly.
pub fn undocumented(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut out = Vec::new();
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for part in parts {
            out.extend(undocumented(doc, part, value, at));
        }
    }
    match value {
        Value::Object(members) => {
            let props = schema.get("properties").and_then(Value::as_object);
            if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                for name in members.keys() {
                    if !props.is_some_and(|p| p.contains_key(name)) {
                        out.push(format!("{at}/{name}: not in the schema"));
                    }
                }
            }
            for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = name.as_str()
                    && !members.contains_key(name)
                {
                    out.push(format!("{at}/{name}: required, missing"));
                }
            }
            for (name, member) in members {
                if let Some(s) = props.and_then(|p| p.get(name)) {
                    out.extend(undocumented(doc, s, member, &format!("{at}/{name}")));
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    out.extend(undocumented(doc, s, item, &format!("{at}/{i}")));
                }
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extra_and_missing_members_are_named_through_refs_and_items() {
        let doc = json!({
            "components": {"schemas": {"Item": {"type": "object", "additionalProperties": false,
                "required": ["a"], "properties": {"a": {"type": "string"}}}}},
            "paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {"schema":
                {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}}}}}}}}}}
        });
        let schema = response_schema(&doc, "GET", "/x", 200).expect("documented");
        assert!(undocumented(&doc, schema, &json!({"items": [{"a": "1"}]}), "").is_empty());
        let wrong = undocumented(&doc, schema, &json!({"items": [{"a": "1", "b": 2}, {}]}), "");
        assert_eq!(wrong, vec!["/items/0/b: not in the schema", "/items/1/a: required, missing"]);
    }
}
