//! Reflex keeps Python web apps behind nginx free of 502/504 errors.
//!
//! The data flows one way, and the module layout shows it:
//!
//! - [`parse`]: pure parsers. Bytes or `&str` in, plain data out; never a path, never I/O.
//! - [`gather`]: everything that reads the system (config files, `/proc`, sysctls, the
//!   filesystem, name resolution) and turns it into plain data.
//! - [`model`]: the plain-data model both sides share: nginx's semantic configuration and the
//!   backends' launch settings.
//! - [`diagnose`]: pure rules over that data. No I/O: every rule is testable from a literal.
//! - [`act`]: consumes findings: applies fixes (later: restarts, alerts).
//! - [`report`]: renders findings as text, JSON or SARIF.
//! - [`cli`]: flags and glue.

pub mod act;
pub mod cli;
pub mod diagnose;
pub mod gather;
pub mod model;
pub mod parse;
pub mod report;

#[cfg(test)]
mod test_support;
