//! Restarting a backend through its supervisor, for `reflex watch`: a systemd unit via
//! `Manager.RestartUnit`, or a supervisord program via `stopProcess` + `startProcess`.
//!
//! Both wait until the supervisor says the restart finished (or a deadline passes): a restart
//! that was merely queued is not a restart. The functions are synchronous, each on a small
//! runtime of its own; do not call them from inside a tokio runtime.

use std::pin::Pin;
use std::time::{Duration, Instant};

use dxr::{TryFromValue, Value};
use zbus::export::futures_core::Stream;
use zbus_systemd::systemd1::ManagerProxy;

use crate::gather::evidence::supervisord::{self, Endpoint, RpcError};
use crate::gather::evidence::systemd::{Systemd, runtime, unit_name};
use crate::model::evidence::Unavailable;

/// How long a restart may take by default: systemd's default `TimeoutStopSec` and
/// `TimeoutStartSec` are 90 s each, but a web backend that needs more than this is down anyway.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// A finished restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartOutcome {
    /// `unit:app.service` or `supervisord:app`.
    pub target: String,
    /// How long it took.
    pub took: Duration,
}

/// Why a restart did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    /// The supervisor could not be reached (no bus, no socket, permission denied).
    #[error("cannot reach {}: {} ({})", .0.what, .0.why, .0.how)]
    Unreachable(Unavailable),
    /// The supervisor refused the request (unknown unit, access denied, bad name...).
    #[error("{target}: restart refused: {message}")]
    Refused { target: String, message: String },
    /// The restart ran and failed (systemd job result `failed`, `timeout`...; supervisord
    /// `SPAWN_ERROR`...).
    #[error("{target}: restart failed: {result}")]
    Failed { target: String, result: String },
    /// No answer before the deadline; the restart may still finish later.
    #[error("{target}: restart did not finish within {}s", deadline.as_secs())]
    Timeout { target: String, deadline: Duration },
}

/// Restarts a systemd unit (`app` means `app.service`) on the systemd named by the environment
/// ([`Systemd::from_env`]), with [`DEFAULT_DEADLINE`].
pub fn restart_unit(name: &str) -> Result<RestartOutcome, RestartError> {
    restart_unit_on(&Systemd::from_env(), name, DEFAULT_DEADLINE)
}

/// Restarts a systemd unit: `RestartUnit(name, "replace")`, then waits for the `JobRemoved`
/// signal of that job. Note that a manual restart resets the unit's `NRestarts` to 0.
pub fn restart_unit_on(
    systemd: &Systemd,
    name: &str,
    deadline: Duration,
) -> Result<RestartOutcome, RestartError> {
    let unit = unit_name(name);
    let target = format!("unit:{unit}");
    let rt = runtime().map_err(|e| RestartError::Failed {
        target: target.clone(),
        result: e.to_string(),
    })?;
    let started = Instant::now();
    rt.block_on(async {
        let conn = systemd.connect().await.map_err(RestartError::Unreachable)?;
        let refused = |e: zbus::Error| RestartError::Refused {
            target: target.clone(),
            message: e.to_string(),
        };
        let manager = ManagerProxy::new(&conn).await.map_err(refused)?;
        // systemd sends JobRemoved only to subscribed clients; the match rule must be in place
        // before the job exists, or a fast job finishes unseen.
        manager.subscribe().await.map_err(refused)?;
        let mut removed = manager.receive_job_removed().await.map_err(refused)?;
        let job = manager
            .restart_unit(unit.clone(), "replace".into())
            .await
            .map_err(refused)?;
        let wait = async {
            while let Some(signal) = next(&mut removed).await {
                let Ok(args) = signal.args() else { continue };
                if args.job.as_str() == job.as_str() {
                    return Some(args.result.to_string());
                }
            }
            None
        };
        let result = tokio::time::timeout(deadline, wait).await;
        let _ = manager.unsubscribe().await;
        match result {
            Ok(Some(r)) if r == "done" => Ok(RestartOutcome {
                target: target.clone(),
                took: started.elapsed(),
            }),
            Ok(Some(r)) => Err(RestartError::Failed {
                target: target.clone(),
                result: r,
            }),
            Ok(None) => Err(RestartError::Failed {
                target: target.clone(),
                result: "the bus connection closed".into(),
            }),
            Err(_) => Err(RestartError::Timeout {
                target: target.clone(),
                deadline,
            }),
        }
    })
}

/// The next item of a stream, without a futures-util dependency.
async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

/// Restarts a supervisord program (`NAME` or `GROUP:NAME`): `stopProcess(name, true)` then
/// `startProcess(name, true)` (supervisord has no restart call). Both wait: stop until the
/// process exited, start until it has stayed up `startsecs`. A program that was not running
/// (fault 70 NOT_RUNNING) is just started.
pub fn restart_program(endpoint: &Endpoint, name: &str) -> Result<RestartOutcome, RestartError> {
    let target = format!("supervisord:{name}");
    let rt = runtime().map_err(|e| RestartError::Failed {
        target: target.clone(),
        result: e.to_string(),
    })?;
    let started = Instant::now();
    rt.block_on(async {
        let params = || vec![Value::String(name.into()), Value::Boolean(true)];
        match supervisord::call(endpoint, "supervisor.stopProcess", params()).await {
            Ok(_) => {}
            Err(e) if e.fault_code() == Some(70) => {}
            Err(e) => return Err(rpc_error(&target, e)),
        }
        let v = supervisord::call(endpoint, "supervisor.startProcess", params())
            .await
            .map_err(|e| rpc_error(&target, e))?;
        match bool::try_from_value(&v) {
            Ok(true) => Ok(RestartOutcome {
                target: target.clone(),
                took: started.elapsed(),
            }),
            _ => Err(RestartError::Failed {
                target: target.clone(),
                result: format!("startProcess returned {v:?}"),
            }),
        }
    })
}

fn rpc_error(target: &str, e: RpcError) -> RestartError {
    match e {
        RpcError::Connect { .. } => RestartError::Unreachable(e.into_unavailable(target)),
        RpcError::Timeout { timeout, .. } => RestartError::Timeout {
            target: target.into(),
            deadline: timeout,
        },
        // 50 SPAWN_ERROR, 30 ABNORMAL_TERMINATION: the restart ran and the program failed.
        RpcError::Fault {
            code: 50 | 30,
            message,
        } => RestartError::Failed {
            target: target.into(),
            result: message,
        },
        other => RestartError::Refused {
            target: target.into(),
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_supervisord_is_unreachable() {
        let ep = Endpoint::Unix {
            path: "/nonexistent/reflex/supervisor.sock".into(),
            auth: None,
        };
        let err = restart_program(&ep, "app").expect_err("no supervisord");
        assert!(matches!(err, RestartError::Unreachable(_)), "{err:?}");
    }

    #[test]
    fn faults_map_to_refused_or_failed() {
        let f = |code| RpcError::Fault {
            code,
            message: "X".into(),
        };
        assert!(matches!(
            rpc_error("t", f(10)),
            RestartError::Refused { .. }
        ));
        assert!(matches!(rpc_error("t", f(50)), RestartError::Failed { .. }));
    }
}
