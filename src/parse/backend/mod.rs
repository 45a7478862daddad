//! Backend launch settings: uvicorn and gunicorn command lines, gunicorn `-c` config files,
//! systemd unit files and supervisord program sections. Pure: text in, data out.

pub mod cmdline;
pub mod gunicorn_conf;
pub mod supervisord;
pub mod systemd_unit;

/// A boolean as systemd (`PrivateTmp=`) and click (`UVICORN_*` flag variables) read it:
/// `1`/`yes`/`y`/`true`/`t`/`on` and their negations, any case.
pub(crate) fn boolean(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        assert_eq!(boolean("yes"), Some(true));
        assert_eq!(boolean("True"), Some(true));
        assert_eq!(boolean("0"), Some(false));
        assert_eq!(boolean("maybe"), None);
    }
}
