//! The one integration-test binary. Every test here runs real programs: the `reflex` binary,
//! and where it matters a real nginx and a real uvicorn or gunicorn, in their own temp dir with
//! unix sockets or OS-assigned loopback ports.

mod backends;
mod check_rules;
mod diag_support;
mod diagnose_faults;
mod diagnose_systemd;
mod evidence;
mod harness;
mod logs;
mod parser_oracle;
mod repro_502;
mod supervisord;
mod systemd;
