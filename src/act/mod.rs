//! Acting on findings: applying fixes (later: restarts and alerts). This is the only layer that
//! changes the system.

pub mod fix;
pub mod restart;
