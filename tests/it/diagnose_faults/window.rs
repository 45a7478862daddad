//! What `reflex diagnose` reads, and what it does when it cannot: a log rotated during the
//! incident, an nginx writing its error log in another time zone than reflex's, an error line
//! nginx cut before `upstream:`, an access log without the upstream fields, logs the user may
//! not read, and a configuration that does not exist.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{backend_down_stack, logs, tcp_stack};
use crate::diag_support::{Diagnose, access_log, get_each, nginx, proxy, wait_until};
use crate::harness::app::App;
use crate::harness::nginx::Nginx;
use crate::harness::ns::{Wrap, require_root};

/// Too-big response headers: a cause only the error log shows.
fn big_headers(n: &Nginx) {
    let codes = get_each(
        n.port(),
        &["/big-header?n=16384", "/", "/big-header?n=16384"],
    );
    assert_eq!(codes, [502, 200, 502], "{}", logs(n));
}

/// logrotate's default for nginx: rename, then USR1 makes the master reopen its logs (new,
/// empty files). The incident is now in `*.log.1`.
#[test]
fn a_log_rotated_during_the_incident() {
    let tmp = crate::harness::shared_tempdir();
    let (app, n) = tcp_stack(tmp.path(), &[], "");
    big_headers(&n);
    for log in [n.error_log(), access_log(&n)] {
        let rotated = format!("{}.1", log.display());
        std::fs::rename(&log, &rotated).expect("rotate");
    }
    let usr1 = Command::new("kill")
        .args(["-s", "USR1", &n.pid().to_string()])
        .status();
    assert!(usr1.is_ok_and(|s| s.success()), "signal the nginx master");
    assert!(
        wait_until(Duration::from_secs(10), || n.error_log().exists()
            && access_log(&n).exists()),
        "nginx reopened its logs"
    );
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    r.expect_top("upstream_header_too_big", Some(false), &logs(&n));
    let sources = r.json.as_ref().map(|j| j["logs"]["sources"].to_string());
    assert!(
        sources.is_some_and(|s| s.contains("error.log.1")),
        "{}",
        r.explain()
    );
}

/// nginx under `TZ=Pacific/Honolulu` (UTC-10) writes its error log in Honolulu time; reflex runs
/// under `TZ=Asia/Tokyo` (UTC+9). Read in reflex's zone the lines would be 19 h old.
#[test]
fn the_error_log_in_nginxs_own_time_zone() {
    // Without tzdata both zones silently fall back to UTC and nothing here would be tested.
    for zone in ["Pacific/Honolulu", "Asia/Tokyo"] {
        let file = Path::new("/usr/share/zoneinfo").join(zone);
        assert!(
            file.exists(),
            "{} is missing (install tzdata)",
            file.display()
        );
    }
    let tmp = crate::harness::shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).start();
    let target = format!("http://127.0.0.1:{}", app.port());
    let honolulu = Wrap::Env(vec![("TZ".into(), "Pacific/Honolulu".into())]);
    let n = nginx(&tmp.path().join("nginx"), "", &proxy(&target, ""))
        .wrap(honolulu)
        .start();
    big_headers(&n);
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .env("TZ", "Asia/Tokyo")
        .run(tmp.path());
    r.expect_top("upstream_header_too_big", Some(false), &logs(&n));
}

/// A request URI long enough that nginx cuts the error line (2048 bytes) before `upstream:`.
/// The configuration has one upstream: the line is its, never "the backend at ?".
#[test]
fn a_cut_error_line_is_attributed_to_the_only_upstream() {
    let tmp = crate::harness::shared_tempdir();
    let (app, n) = backend_down_stack(tmp.path());
    let long = format!("/{}", "x".repeat(3000));
    assert_eq!(get_each(n.port(), &[long.as_str()]), [502]);
    let cut = n
        .error_lines("/xxxxxxxx")
        .into_iter()
        .any(|l| !l.contains("upstream: "));
    assert!(
        cut,
        "nginx cut the line before `upstream:`\n{}",
        n.error_log_text()
    );
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    r.expect_top("backend_down", Some(true), &logs(&n));
    assert!(
        !r.stdout.contains(" at ?") && !r.stdout.contains("\"?\""),
        "{}",
        r.explain()
    );
}

/// The default `combined` access log and 5xx the application itself returns (so the error log
/// has nothing): not healthy, and the log_format to add is named.
#[test]
fn five_hundreds_in_a_combined_access_log() {
    let tmp = crate::harness::shared_tempdir();
    let app = App::uvicorn(&tmp.path().join("app")).start();
    let dir = tmp.path().join("nginx");
    let access = dir.join("logs/combined.log");
    let location = proxy(&format!("http://127.0.0.1:{}", app.port()), "");
    let n = Nginx::builder(&dir)
        .server(&format!(
            "access_log {} combined;\n{location}",
            access.display()
        ))
        .start();
    let codes = get_each(
        n.port(),
        &["/status/502", "/status/504", "/", "/status/502"],
    );
    assert_eq!(codes, [502, 504, 200, 502]);
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .run(tmp.path());
    r.expect_top("unexplained_5xx", Some(false), &n.error_log_text());
    let hint = r.unavailable().iter().any(|u| {
        u["what"]
            .as_str()
            .is_some_and(|w| w.contains("combined.log"))
            && u["how"]
                .as_str()
                .is_some_and(|h| h.contains("log_format reflex"))
    });
    assert!(hint, "the log_format line to add\n{}", r.explain());
}

/// As `nobody`, with both logs root's and 0600: no log line at all, yet the probe is refused and
/// nothing listens: the backend is down.
#[test]
fn unreadable_logs_unprivileged() {
    use std::os::unix::fs::PermissionsExt;
    require_root("switching to nobody");
    let tmp = crate::harness::shared_tempdir();
    let (app, n) = backend_down_stack(tmp.path());
    for log in [n.error_log(), access_log(&n)] {
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .unprivileged()
        .run(tmp.path());
    r.expect_top("backend_down", Some(true), &logs(&n));
    let denied = r.unavailable().iter().any(|u| {
        u["what"].as_str().is_some_and(|w| w.contains("error.log"))
            && u["why"].as_str().is_some_and(|w| w.contains("denied"))
    });
    assert!(denied, "{}", r.explain());
}

#[test]
fn a_named_configuration_that_cannot_be_read() {
    let tmp = crate::harness::shared_tempdir();
    let r = Diagnose::new(Path::new("/nonexistent/nginx.conf")).run(tmp.path());
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(
        r.stderr
            .contains("cannot read the nginx configuration `/nonexistent/nginx.conf`"),
        "{}",
        r.explain()
    );
}

/// A healthy stack and an application log last written three days ago whose undated uvicorn
/// lines include `Exceeded concurrency limit.`: none of it is in the window.
#[test]
fn an_old_application_log_on_a_healthy_stack() {
    let tmp = crate::harness::shared_tempdir();
    let (app, n) = tcp_stack(tmp.path(), &[], "");
    assert_eq!(get_each(n.port(), &["/", "/health"]), [200; 2]);
    let old = crate::harness::write(
        tmp.path(),
        "old-app.log",
        "INFO:     Started server process [999]\nWARNING:  Exceeded concurrency limit.\nINFO:     Shutting down\n",
    );
    let three_days = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|f| f.set_modified(three_days))
        .expect("age the log");
    let r = Diagnose::new(&n.conf())
        .backend(&app.cmdline())
        .app_log(&old)
        .run(tmp.path());
    assert!(
        r.findings().is_empty() && r.code == Some(0),
        "healthy\n{}",
        r.explain()
    );
}

/// nginx's access log copied as if from another host.
fn copy_access_log(n: &Nginx, dir: &Path) -> std::path::PathBuf {
    let copied = dir.join("access.copy.log");
    std::fs::copy(access_log(n), &copied).expect("copy");
    copied
}

/// `reflex diagnose --offline --access-log LOG` with `n`'s configuration.
fn offline(n: &Nginx, log: &Path) -> Diagnose {
    Diagnose::new(&n.conf()).args(&[Path::new("--offline"), Path::new("--access-log"), log])
}

/// `--offline` with only an access log (no error log copied): accepted, and its 502s are a
/// finding.
#[test]
fn offline_with_only_an_access_log() {
    let tmp = crate::harness::shared_tempdir();
    let (_app, n) = backend_down_stack(tmp.path());
    let copied = copy_access_log(&n, tmp.path());
    let r = offline(&n, &copied)
        .args(&["--log-format", crate::diag_support::FORMAT])
        .run(tmp.path());
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.top_kind(), Some("unexplained_5xx"), "{}", r.explain());
}

/// The same access log named without `--log-format`: its format is found among the
/// configuration's (`combined` would parse none of its lines), so the diagnosis is the same;
/// a log in a format nobody named parses nothing, which is inconclusive (exit 2), not healthy.
#[test]
fn offline_access_log_format_is_detected_and_unparsed_logs_are_inconclusive() {
    let tmp = crate::harness::shared_tempdir();
    let (_app, n) = backend_down_stack(tmp.path());
    let copied = copy_access_log(&n, tmp.path());
    let r = offline(&n, &copied).run(tmp.path());
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.top_kind(), Some("unexplained_5xx"), "{}", r.explain());
    let json = r.json.as_ref().expect("json");
    assert_eq!(json["logs"]["malformed_lines"], 0, "{}", r.explain());

    let foreign = crate::harness::write(tmp.path(), "foreign.log", "a|b|c\nd|e|f\n");
    let r = offline(&n, &foreign).run(tmp.path());
    assert_eq!(r.code, Some(2), "{}", r.explain());
    let json = r.json.as_ref().expect("json");
    assert_eq!(json["verdict"], "inconclusive", "{}", r.explain());
    assert!(r.findings().is_empty(), "{}", r.explain());
}

/// `--format`'s choices are per command: SARIF describes static findings (`check`) only.
#[test]
fn diagnose_offers_only_the_formats_it_prints() {
    let help = |cmd: &str| {
        let out = crate::harness::reflex()
            .args([cmd, "--help"])
            .output()
            .expect("run reflex");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(!help("diagnose").contains("sarif"), "{}", help("diagnose"));
    assert!(help("check").contains("sarif"), "{}", help("check"));
}
