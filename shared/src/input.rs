//! Reading what the vendor sends (commands, SMS messages): a value that does not fit its type is
//! refused with the field's path and the rule it breaks, in words (`assessment.score` must be a
//! number, not a string), not serde's message.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// `value` as a `T`, or what is wrong with it: "`<path>` <rule>".
pub fn read<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        explain(&path, &e.into_inner().to_string())
    })
}

/// The field a path names, for a message: `.` (the top) has none.
fn field(path: &str, name: &str) -> String {
    match path {
        "" | "." => format!("`{name}`"),
        p => format!("`{p}.{name}`"),
    }
}

/// What a type serde expected is, in words.
fn kind(expected: &str) -> &'static str {
    let e = expected.trim();
    if [
        "i64", "u64", "i32", "u32", "usize", "u8", "u16", "i16", "i8",
    ]
    .contains(&e)
    {
        "a whole number"
    } else if ["f64", "f32"].contains(&e) {
        "a number"
    } else if e == "a boolean" || e == "bool" {
        "true or false"
    } else if e.contains("string") || e == "char" {
        "a string"
    } else if e.contains("sequence") {
        "a list"
    } else if e.starts_with("struct") || e.contains("map") {
        "an object"
    } else {
        "of another type"
    }
}

/// What a value serde found is, in words.
fn found(unexpected: &str) -> String {
    let u = unexpected.trim();
    for (prefix, word) in [
        ("string", "a string"),
        ("integer", "a number"),
        ("floating point", "a number"),
        ("boolean", "a boolean"),
        ("sequence", "a list"),
        ("map", "an object"),
        ("null", "null"),
        ("unit", "null"),
    ] {
        if u.starts_with(prefix) {
            return word.to_string();
        }
    }
    u.to_string()
}

fn names(list: &str) -> String {
    list.replace('`', "").replace(" or ", ", ")
}

/// serde_json's message for `path`, in words naming the field and its rule.
fn explain(path: &str, serde: &str) -> String {
    let at = |p: &str| match p {
        "" | "." => "the value".to_string(),
        p => format!("`{p}`"),
    };
    // "unknown field `x`, expected one of `a`, `b`" / "expected `a`" / "there are no fields"
    if let Some(rest) = serde.strip_prefix("unknown field `")
        && let Some((name, tail)) = rest.split_once('`')
    {
        let takes = tail
            .split_once("expected one of ")
            .or_else(|| tail.split_once("expected "))
            .map(|(_, l)| {
                format!(
                    " (it takes {})",
                    names(l.split(" at line").next().unwrap_or(l))
                )
            })
            .unwrap_or_default();
        // The path ends in the unknown field itself.
        let named = if path.ends_with(name) {
            format!("`{path}`")
        } else {
            field(path, name)
        };
        return format!("{named} is not a field here{takes}");
    }
    if let Some(rest) = serde.strip_prefix("missing field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        return format!("{} is required", field(path, name));
    }
    if let Some(rest) = serde.strip_prefix("unknown variant `")
        && let Some((name, tail)) = rest.split_once('`')
    {
        let one_of = tail
            .split_once("expected one of ")
            .or_else(|| tail.split_once("expected "))
            .map_or(String::new(), |(_, l)| {
                names(l.split(" at line").next().unwrap_or(l))
            });
        return format!("{} must be one of {one_of}, not `{name}`", at(path));
    }
    if let Some(rest) = serde.strip_prefix("invalid type: ")
        && let Some((got, expected)) = rest.split_once(", expected ")
    {
        let expected = expected.split(" at line").next().unwrap_or(expected);
        return format!(
            "{} must be {}, not {}",
            at(path),
            kind(expected),
            found(got)
        );
    }
    if let Some(rest) = serde.strip_prefix("invalid value: ")
        && let Some((got, expected)) = rest.split_once(", expected ")
    {
        let expected = expected.split(" at line").next().unwrap_or(expected);
        return format!("{} must be {expected}, not {}", at(path), found(got));
    }
    format!(
        "{}: {}",
        at(path),
        serde.split(" at line").next().unwrap_or(serde)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        score: Option<f64>,
        count: Option<i64>,
        done: Option<bool>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    enum Action {
        Schedule,
        Cancel,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        action: Option<Action>,
        inner: Option<Inner>,
        tags: Option<Vec<String>>,
    }

    fn why(v: Value) -> String {
        read::<Outer>(v).unwrap_err()
    }

    #[test]
    fn each_error_names_the_field_and_its_rule() {
        use serde_json::json;
        assert_eq!(why(json!({})), "`name` is required");
        assert_eq!(
            why(json!({"name": "x", "colour": 1})),
            "`colour` is not a field here (it takes name, action, inner, tags)"
        );
        assert_eq!(
            why(json!({"name": "x", "inner": {"score": "high"}})),
            "`inner.score` must be a number, not a string"
        );
        assert_eq!(
            why(json!({"name": "x", "inner": {"count": 1.5}})),
            "`inner.count` must be a whole number, not a number"
        );
        assert_eq!(
            why(json!({"name": "x", "inner": {"done": "yes"}})),
            "`inner.done` must be true or false, not a string"
        );
        assert_eq!(
            why(json!({"name": "x", "inner": {"extra": 1}})),
            "`inner.extra` is not a field here (it takes score, count, done)"
        );
        assert_eq!(
            why(json!({"name": "x", "action": "later"})),
            "`action` must be one of schedule, cancel, not `later`"
        );
        assert_eq!(
            why(json!({"name": "x", "tags": "a"})),
            "`tags` must be a list, not a string"
        );
        assert_eq!(
            why(json!({"name": 5})),
            "`name` must be a string, not a number"
        );
        assert_eq!(why(json!("x")), "the value must be an object, not a string");
    }
}
