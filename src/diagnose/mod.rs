//! Pure rules over gathered data. No I/O in here: every rule is testable from a literal.
//!
//! - [`finding`]: what a rule reports.
//! - [`check`]: static rules over the nginx configuration and the backends' launch settings.

pub mod check;
pub mod finding;
pub mod live;
