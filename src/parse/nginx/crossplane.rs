//! crossplane-shaped JSON for a [`ConfigTree`]. (To be written.)

use super::ConfigTree;

/// The JSON `crossplane parse` prints for the same configuration.
pub fn to_crossplane_json(tree: &ConfigTree) -> serde_json::Value {
    let _ = tree;
    serde_json::Value::Null
}
