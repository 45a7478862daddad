//! supervisord programs as evidence, over its XML-RPC interface (`POST /RPC2`).
//!
//! supervisord usually listens on a unix socket (`[unix_http_server] file=`), sometimes on TCP
//! (`[inet_http_server] port=`), so the transport is ours: one hyper HTTP/1.1 connection per
//! call over a tokio `UnixStream` or `TcpStream`; dxr encodes the call and decodes the answer.
//! The public functions are synchronous (a small current-thread runtime each): do not call them
//! from inside a tokio runtime. This module only reads; `act::restart` stops and starts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dxr::{MethodCall, MethodResponse, TryFromValue, Value};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::gather::evidence::applog;
use crate::model::evidence::{AppLogLine, Fact, ProgramState, Unavailable};

/// How long one XML-RPC call may take. `stopProcess` waits for the program to exit (up to its
/// `stopwaitsecs`, 10 s by default) before supervisord answers.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where supervisord's XML-RPC interface listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix {
        path: PathBuf,
        auth: Option<(String, String)>,
    },
    Tcp {
        host: String,
        port: u16,
        auth: Option<(String, String)>,
    },
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix { path, .. } => write!(f, "unix:{}", path.display()),
            Endpoint::Tcp { host, port, .. } => write!(f, "http://{host}:{port}"),
        }
    }
}

/// The endpoint a supervisord.conf declares: `[unix_http_server] file=` (preferred, as
/// supervisorctl's default `serverurl` is the socket), else `[inet_http_server] port=`, with
/// their `username=`/`password=`. `here` is the file's directory (for `%(here)s`).
///
/// `crate::parse::backend::supervisord` does not read these sections, hence this small reader.
pub fn endpoint_from_conf(text: &str, here: &Path) -> Option<Endpoint> {
    let (mut section, mut unix, mut inet) = (String::new(), Vec::new(), Vec::new());
    for raw in text.lines() {
        let line = raw.split([';', '#']).next().unwrap_or("").trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        } else if let Some((k, v)) = line.split_once(['=', ':']) {
            let kv = (
                k.trim().to_lowercase(),
                v.trim().replace("%(here)s", &here.display().to_string()),
            );
            match section.as_str() {
                "unix_http_server" => unix.push(kv),
                "inet_http_server" => inet.push(kv),
                _ => {}
            }
        }
    }
    let get = |kvs: &[(String, String)], k: &str| {
        kvs.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let auth = |kvs: &[(String, String)]| {
        Some((
            get(kvs, "username")?,
            get(kvs, "password").unwrap_or_default(),
        ))
    };
    if let Some(file) = get(&unix, "file") {
        return Some(Endpoint::Unix {
            path: here.join(file),
            auth: auth(&unix),
        });
    }
    let port = get(&inet, "port")?;
    let (host, port) = port.rsplit_once(':').unwrap_or(("", port.as_str()));
    // `*:9001` and `:9001` listen on every address: talk to the loopback one.
    let host = if host.is_empty() || host == "*" {
        "127.0.0.1"
    } else {
        host
    };
    Some(Endpoint::Tcp {
        host: host.to_string(),
        port: port.parse().ok()?,
        auth: auth(&inet),
    })
}

/// A failed XML-RPC call.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    // `cause`, not `source`: the message says it already, and a chained source would say it
    // twice in `error: …: …`.
    #[error("cannot connect to supervisord at {endpoint}: {cause}")]
    Connect {
        endpoint: String,
        cause: std::io::Error,
    },
    #[error("supervisord at {endpoint} did not answer within {}s", timeout.as_secs())]
    Timeout { endpoint: String, timeout: Duration },
    #[error("HTTP exchange with supervisord failed: {0}")]
    Http(String),
    /// supervisord answered with a fault (e.g. 10 BAD_NAME, 60 ALREADY_STARTED, 70 NOT_RUNNING).
    #[error("supervisord fault {code}: {message}")]
    Fault { code: i32, message: String },
    #[error("unexpected answer from supervisord: {0}")]
    Decode(String),
}

impl RpcError {
    /// The fault code, when supervisord answered with a fault.
    pub fn fault_code(&self) -> Option<i32> {
        match self {
            RpcError::Fault { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// As missing evidence: permission denied on the socket gets its own advice.
    pub fn into_fact<T>(self, what: &str) -> Fact<T> {
        Fact::Unavailable(self.into_unavailable(what))
    }

    /// As [`Unavailable`] (see [`RpcError::into_fact`]).
    pub fn into_unavailable(self, what: &str) -> Unavailable {
        let how = match &self {
            RpcError::Connect { cause, .. }
                if cause.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                "run as root or a user in the socket's group"
            }
            RpcError::Connect { .. } => {
                "check that supervisord is running and its [unix_http_server] file="
            }
            _ => "check supervisord's log",
        };
        Unavailable {
            what: what.into(),
            why: self.to_string(),
            how: how.into(),
        }
    }
}

/// One XML-RPC call on a fresh connection, with [`CALL_TIMEOUT`].
pub async fn call(
    endpoint: &Endpoint,
    method: &str,
    params: Vec<Value>,
) -> Result<Value, RpcError> {
    let timeout = CALL_TIMEOUT;
    match tokio::time::timeout(timeout, call_inner(endpoint, method, params)).await {
        Ok(r) => r,
        Err(_) => Err(RpcError::Timeout {
            endpoint: endpoint.to_string(),
            timeout,
        }),
    }
}

async fn call_inner(
    endpoint: &Endpoint,
    method: &str,
    params: Vec<Value>,
) -> Result<Value, RpcError> {
    let body = MethodCall {
        name: method.into(),
        params,
    }
    .to_xml()
    .map_err(|e| RpcError::Decode(e.to_string()))?;
    let connect_err = |cause| RpcError::Connect {
        endpoint: endpoint.to_string(),
        cause,
    };
    let (host, auth) = match endpoint {
        Endpoint::Unix { auth, .. } => ("localhost".to_string(), auth),
        Endpoint::Tcp { host, port, auth } => (format!("{host}:{port}"), auth),
    };
    let mut req = hyper::Request::post("/RPC2")
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "text/xml");
    if let Some((user, pass)) = auth {
        req = req.header(
            hyper::header::AUTHORIZATION,
            format!("Basic {}", base64(format!("{user}:{pass}").as_bytes())),
        );
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| RpcError::Http(e.to_string()))?;
    let text = match endpoint {
        Endpoint::Unix { path, .. } => {
            exchange(
                tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect_err)?,
                req,
            )
            .await?
        }
        Endpoint::Tcp { host, port, .. } => {
            exchange(
                tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(connect_err)?,
                req,
            )
            .await?
        }
    };
    decode_response(&text)
}

async fn exchange<S>(stream: S, req: hyper::Request<Full<Bytes>>) -> Result<String, RpcError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http = |e: hyper::Error| RpcError::Http(e.to_string());
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(http)?;
    let driver = tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(http)?;
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(http)?.to_bytes();
    driver.abort();
    if !status.is_success() {
        return Err(RpcError::Http(format!(
            "HTTP {status} from /RPC2 (wrong credentials?)"
        )));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// A `methodResponse` body: the value, or the fault as [`RpcError::Fault`].
pub fn decode_response(text: &str) -> Result<Value, RpcError> {
    if text.contains("<fault>") {
        let fault = dxr::FaultResponse::from_xml(text)
            .map_err(|e| RpcError::Decode(e.to_string()))?
            .fault;
        return Err(RpcError::Fault {
            code: fault.code(),
            message: fault.string().to_string(),
        });
    }
    Ok(MethodResponse::from_xml(text)
        .map_err(|e| RpcError::Decode(short(&e.to_string())))?
        .value)
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Standard base64 for the Basic auth header (too small a need for a dependency).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            let c = if i <= chunk.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            };
            out.push(c);
        }
    }
    out
}

/// `getProcessInfo`'s struct, as supervisord 4.x sends it (extra members are ignored).
#[derive(Debug, TryFromValue)]
struct ProcessInfo {
    name: String,
    group: String,
    statename: String,
    pid: i32,
    start: i32,
    stop: i32,
    exitstatus: i32,
    spawnerr: String,
    stdout_logfile: String,
    stderr_logfile: String,
}

impl From<ProcessInfo> for ProgramState {
    fn from(p: ProcessInfo) -> Self {
        let path = |s: String| (!s.is_empty()).then(|| PathBuf::from(s));
        ProgramState {
            name: p.name,
            group: p.group,
            state: p.statename,
            pid: p.pid,
            start: u64::try_from(p.start).unwrap_or(0),
            stop: u64::try_from(p.stop).unwrap_or(0),
            exit_status: p.exitstatus,
            spawn_error: p.spawnerr,
            stdout_logfile: path(p.stdout_logfile),
            stderr_logfile: path(p.stderr_logfile),
        }
    }
}

/// Decodes a `getAllProcessInfo` answer.
pub fn decode_programs(value: &Value) -> Result<Vec<ProgramState>, RpcError> {
    let all =
        Vec::<ProcessInfo>::try_from_value(value).map_err(|e| RpcError::Decode(e.to_string()))?;
    Ok(all.into_iter().map(ProgramState::from).collect())
}

/// Every program supervisord runs, via `supervisor.getAllProcessInfo`.
pub fn programs(endpoint: &Endpoint) -> Fact<Vec<ProgramState>> {
    let what = format!("supervisord programs ({endpoint})");
    block_on(&what, async {
        let value = call(endpoint, "supervisor.getAllProcessInfo", vec![]).await?;
        decode_programs(&value)
    })
}

/// The last `bytes` of the program's stdout and stderr logs (stdout first, then stderr: the
/// two logs cannot be interleaved without timestamps), via `supervisor.tailProcess*Log`. A log
/// that is not configured (`NO_FILE`) is skipped. `name` is `NAME` or `GROUP:NAME`.
pub fn tail(endpoint: &Endpoint, name: &str, bytes: u32) -> Fact<Vec<AppLogLine>> {
    let what = format!("supervisord log of {name}");
    block_on(&what, async {
        let mut lines = Vec::new();
        for method in [
            "supervisor.tailProcessStdoutLog",
            "supervisor.tailProcessStderrLog",
        ] {
            let params = vec![
                Value::String(name.into()),
                Value::Integer(0),
                Value::Integer(i32::try_from(bytes).unwrap_or(i32::MAX)),
            ];
            match call(endpoint, method, params).await {
                Ok(v) => lines.extend(decode_tail(&v)?),
                // 70 NO_FILE: that log is not kept (`redirect_stderr`, `/dev/null`, `NONE`).
                Err(e) if e.fault_code() == Some(70) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(lines)
    })
}

/// Decodes `[string bytes, int offset, bool overflow]`; drops the partial first line when the
/// window did not start at the beginning of the log (overflow).
pub fn decode_tail(value: &Value) -> Result<Vec<AppLogLine>, RpcError> {
    let (text, _offset, overflow) = <(String, i32, bool)>::try_from_value(value)
        .map_err(|e| RpcError::Decode(e.to_string()))?;
    let text = if overflow {
        text.split_once('\n').map_or("", |(_, rest)| rest)
    } else {
        text.as_str()
    };
    Ok(applog::parse_lines(text.as_bytes()))
}

/// Runs `fut` on a small runtime, turning errors into [`Fact::Unavailable`].
fn block_on<T>(what: &str, fut: impl Future<Output = Result<T, RpcError>>) -> Fact<T> {
    match crate::gather::evidence::systemd::runtime() {
        Ok(rt) => match rt.block_on(fut) {
            Ok(v) => Fact::Known(v),
            Err(e) => e.into_fact(what),
        },
        Err(e) => Fact::unavailable(what, e.to_string(), "report this as a bug"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dxr::TryToValue;

    #[test]
    fn endpoint_from_unix_and_inet_sections() {
        let conf = "[unix_http_server]\nfile=%(here)s/supervisor.sock   ; the socket\nchmod=0700\n\n\
                    [inet_http_server]\nport=*:9001\n";
        assert_eq!(
            endpoint_from_conf(conf, Path::new("/etc/supervisor")),
            Some(Endpoint::Unix {
                path: "/etc/supervisor/supervisor.sock".into(),
                auth: None
            })
        );
        let conf = "[inet_http_server]\nport = 127.0.0.1:9001\nusername = user\npassword = 123\n";
        assert_eq!(
            endpoint_from_conf(conf, Path::new("/")),
            Some(Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 9001,
                auth: Some(("user".into(), "123".into()))
            })
        );
        assert_eq!(
            endpoint_from_conf("[inet_http_server]\nport=9001\n", Path::new("/")),
            Some(Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 9001,
                auth: None
            })
        );
        assert_eq!(
            endpoint_from_conf("[supervisord]\nlogfile=/tmp/x\n", Path::new("/")),
            None
        );
        // Debian's shipped /etc/supervisor/supervisord.conf.
        let debian = "[unix_http_server]\nfile=/var/run/supervisor.sock   ; (the path to the socket file)\nchmod=0700                       ; sockef file mode (default 0700)\n";
        assert_eq!(
            endpoint_from_conf(debian, Path::new("/etc/supervisor")),
            Some(Endpoint::Unix {
                path: "/var/run/supervisor.sock".into(),
                auth: None
            })
        );
    }

    #[test]
    fn decodes_get_all_process_info_from_supervisord_4() {
        // In the shape supervisord 4.2.5 answers (member order and types as it sends them);
        // tests/it/supervisord.rs decodes the real thing.
        let xml = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n\
            <value><struct>\n\
            <member>\n<name>description</name>\n<value><string>pid 4242, uptime 0:00:03</string></value>\n</member>\n\
            <member>\n<name>pid</name>\n<value><int>4242</int></value>\n</member>\n\
            <member>\n<name>stderr_logfile</name>\n<value><string>/tmp/app.err.log</string></value>\n</member>\n\
            <member>\n<name>stop</name>\n<value><int>0</int></value>\n</member>\n\
            <member>\n<name>logfile</name>\n<value><string>/tmp/app.out.log</string></value>\n</member>\n\
            <member>\n<name>exitstatus</name>\n<value><int>0</int></value>\n</member>\n\
            <member>\n<name>spawnerr</name>\n<value><string></string></value>\n</member>\n\
            <member>\n<name>now</name>\n<value><int>1704164648</int></value>\n</member>\n\
            <member>\n<name>group</name>\n<value><string>app</string></value>\n</member>\n\
            <member>\n<name>name</name>\n<value><string>app</string></value>\n</member>\n\
            <member>\n<name>statename</name>\n<value><string>RUNNING</string></value>\n</member>\n\
            <member>\n<name>start</name>\n<value><int>1704164645</int></value>\n</member>\n\
            <member>\n<name>state</name>\n<value><int>20</int></value>\n</member>\n\
            <member>\n<name>stdout_logfile</name>\n<value><string>/tmp/app.out.log</string></value>\n</member>\n\
            </struct></value>\n</data></array></value>\n</param>\n</params>\n</methodResponse>\n";
        let value = decode_response(xml).expect("decodes");
        let got = decode_programs(&value).expect("programs");
        assert_eq!(
            got,
            vec![ProgramState {
                name: "app".into(),
                group: "app".into(),
                state: "RUNNING".into(),
                pid: 4242,
                start: 1_704_164_645,
                stop: 0,
                exit_status: 0,
                spawn_error: String::new(),
                stdout_logfile: Some("/tmp/app.out.log".into()),
                stderr_logfile: Some("/tmp/app.err.log".into()),
            }]
        );
    }

    #[test]
    fn decodes_faults_and_tails() {
        let fault = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n\
            <member>\n<name>faultCode</name>\n<value><int>10</int></value>\n</member>\n\
            <member>\n<name>faultString</name>\n<value><string>BAD_NAME: nope</string></value>\n</member>\n\
            </struct></value>\n</fault>\n</methodResponse>\n";
        let err = decode_response(fault).expect_err("fault");
        assert_eq!(err.fault_code(), Some(10));
        let tail = (
            "tial line\nINFO:     Started server process [7]\n",
            99,
            true,
        )
            .try_to_value()
            .expect("value");
        let lines = decode_tail(&tail).expect("tail");
        assert_eq!(
            lines,
            vec![AppLogLine {
                at_ms: None,
                text: "INFO:     Started server process [7]".into()
            }]
        );
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("user:123", "dXNlcjoxMjM="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn no_socket_is_unavailable() {
        let ep = Endpoint::Unix {
            path: "/nonexistent/reflex/supervisor.sock".into(),
            auth: None,
        };
        let got = programs(&ep);
        assert!(
            matches!(got, Fact::Unavailable(ref u) if u.why.starts_with("cannot connect")),
            "{got:?}"
        );
    }
}
