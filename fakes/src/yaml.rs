//! YAML documents (the derived vendor descriptions) as JSON values.

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Map, Number, Value};

/// The first document of `text` as JSON.
pub fn to_json(text: &str) -> Result<Value, String> {
    let docs = Yaml::load_from_str(text).map_err(|e| e.to_string())?;
    let doc = docs.into_iter().next().ok_or("empty YAML document")?;
    convert(&doc)
}

fn convert(node: &Yaml) -> Result<Value, String> {
    Ok(match node {
        Yaml::Value(scalar) => scalar_value(scalar),
        Yaml::Sequence(items) => Value::Array(items.iter().map(convert).collect::<Result<_, _>>()?),
        Yaml::Mapping(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Yaml::Value(Scalar::String(s)) => s.to_string(),
                    Yaml::Value(other) => match scalar_value(other) {
                        Value::String(s) => s,
                        v => v.to_string(),
                    },
                    _ => return Err("a mapping key is not a scalar".into()),
                };
                map.insert(key, convert(v)?);
            }
            Value::Object(map)
        }
        Yaml::Representation(text, _, _) => Value::String(text.to_string()),
        Yaml::Tagged(_, inner) => convert(inner)?,
        Yaml::Alias(_) => return Err("YAML aliases are not supported".into()),
        Yaml::BadValue => return Err("a YAML value could not be read".into()),
    })
}

fn scalar_value(scalar: &Scalar) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number((*i).into()),
        Scalar::FloatingPoint(f) => Number::from_f64(f.into_inner())
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn converts_nested_documents() {
        let v = super::to_json("a: 1\nb: [x, true, 2.5, null]\nc: {d: '7'}\n").unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "b": ["x", true, 2.5, null], "c": {"d": "7"}})
        );
    }
}
