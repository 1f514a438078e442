//! What the property tests share.

use serde_json::Value;

/// Replaces the value at a random place in `value` by `new`: a message damaged in one part.
pub fn graft(value: &mut Value, choice: usize, new: Value) {
    let len = match value {
        Value::Object(map) => map.len(),
        Value::Array(items) => items.len(),
        _ => 0,
    };
    if len == 0 || choice % 3 == 0 {
        *value = new;
        return;
    }
    let child = match value {
        Value::Object(map) => map.values_mut().nth(choice % len),
        Value::Array(items) => items.get_mut(choice % len),
        _ => None,
    };
    if let Some(child) = child {
        graft(child, choice / 3, new);
    }
}
