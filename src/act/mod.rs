//! Acting on findings: applying fixes (later: restarts and alerts).
