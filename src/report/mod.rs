//! Rendering findings: human text, JSON and SARIF.
