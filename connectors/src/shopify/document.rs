//! One GraphQL document of aliased root fields with their variables, and
//! the Admin API's answer to it (data per alias, errors, `extensions.cost`).

use std::time::Duration;

use serde_json::{Map, Value};

/// A document under construction: `mutation Hub($m0: T!, ...) { m0: f(arg: $m0) { ... } ... }`.
#[derive(Debug, Default)]
pub struct Document {
    definitions: Vec<String>,
    fields: Vec<String>,
    pub variables: Map<String, Value>,
    /// Requested cost as Shopify counts it: 10 per mutation, 1 per object query.
    pub cost: f64,
}

impl Document {
    /// Adds `alias: field(arg: $alias) selection`, `$alias` of `var_type`.
    /// (Each argument is one part of the GraphQL text; a struct of them would
    /// only rename them.)
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        alias: &str,
        field: &str,
        arg: &str,
        var_type: &str,
        value: Value,
        selection: &str,
        cost: f64,
    ) {
        self.definitions.push(format!("${alias}: {var_type}"));
        self.fields
            .push(format!("{alias}: {field}({arg}: ${alias}) {selection}"));
        self.variables.insert(alias.to_string(), value);
        self.cost += cost;
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The request body: `{"query", "variables"}`.
    pub fn body(&self, operation: &str, name: &str) -> Value {
        let query = format!(
            "{operation} {name}({}) {{\n  {}\n}}",
            self.definitions.join(", "),
            self.fields.join("\n  ")
        );
        serde_json::json!({"query": query, "variables": self.variables})
    }
}

/// `extensions.cost` of an answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    pub requested: f64,
    pub maximum: f64,
    pub available: f64,
    pub restore_rate: f64,
}

impl Cost {
    pub fn read(answer: &Value) -> Option<Cost> {
        let cost = answer.pointer("/extensions/cost")?;
        let status = cost.get("throttleStatus")?;
        Some(Cost {
            requested: cost.get("requestedQueryCost")?.as_f64()?,
            maximum: status.get("maximumAvailable")?.as_f64()?,
            available: status.get("currentlyAvailable")?.as_f64()?,
            restore_rate: status.get("restoreRate")?.as_f64()?,
        })
    }

    /// How long until `needed` points are in the bucket: `(needed -
    /// available) / restoreRate`; None when they are there now.
    pub fn wait_for(&self, needed: f64) -> Option<Duration> {
        if needed <= self.available || self.restore_rate <= 0.0 {
            return None;
        }
        let secs = ((needed.min(self.maximum) - self.available) / self.restore_rate).max(0.0);
        Some(Duration::from_secs_f64(secs.min(3600.0)))
    }
}

/// A top-level GraphQL error's code and message.
pub fn errors(answer: &Value) -> Vec<(Option<String>, String, Option<String>)> {
    answer
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e.pointer("/extensions/code")
                    .and_then(Value::as_str)
                    .map(String::from),
                e.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("GraphQL error")
                    .to_string(),
                e.pointer("/path/0")
                    .and_then(Value::as_str)
                    .map(String::from),
            )
        })
        .collect()
}

/// `userErrors` of one payload as one message: `email: Email is invalid`.
pub fn user_errors(payload: &Value) -> Option<String> {
    let errors = payload.get("userErrors")?.as_array()?;
    if errors.is_empty() {
        return None;
    }
    Some(
        errors
            .iter()
            .map(|e| {
                let field: Vec<&str> = e
                    .get("field")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let message = e.get("message").and_then(Value::as_str).unwrap_or("error");
                if field.is_empty() {
                    message.to_string()
                } else {
                    format!("{}: {message}", field.join("."))
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
    )
}
