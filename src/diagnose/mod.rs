//! Pure rules over gathered data. No I/O in here: every rule is testable from a literal.
