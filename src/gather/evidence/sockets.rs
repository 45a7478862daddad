//! Listening sockets with their accept queues, and TCP connections stuck in SYN-SENT, from
//! netlink `sock_diag`; socket owners from `/proc/*/fd`.
//!
//! Why netlink: `/proc/net/tcp` shows only the receive queue (no backlog maximum) and
//! `/proc/net/unix` no queue data at all. For a TCP listener inet_diag reports the accept-queue
//! length in `recv_queue` and the effective backlog (after the `somaxconn` cap) in `send_queue`;
//! for a unix listener `UDIAG_SHOW_RQLEN` reports the same pair. sock_diag dumps need no
//! privilege; reading other users' `/proc/PID/fd` needs root or CAP_SYS_PTRACE.
//!
//! This module must not interpret the numbers (a full queue is the rules' business).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::StateFlags as TcpStates;
use netlink_packet_sock_diag::inet::nlas::Nla;
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, InetResponse, SocketId};
use netlink_packet_sock_diag::unix::nlas::UnixDiagName;
use netlink_packet_sock_diag::unix::{ShowFlags, StateFlags as UnixStates, UnixRequest};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr};

use crate::model::evidence::{Fact, Listener, Unavailable};

/// Every TCP (v4 and v6) and unix-stream listener, with the PIDs that hold it. The second value
/// says which owners could not be read (other users' processes without root), if any.
pub fn listeners() -> (Fact<Vec<Listener>>, Option<Unavailable>) {
    let mut out = Vec::new();
    for family in [AF_INET, AF_INET6] {
        match dump(inet_request(family, TcpStates::LISTEN)) {
            Ok(msgs) => out.extend(msgs.iter().filter_map(tcp_listener)),
            Err(e) => return (netlink_unavailable("TCP listeners", &e), None),
        }
    }
    let unix = UnixRequest {
        state_flags: UnixStates::LISTEN,
        inode: 0,
        show_flags: ShowFlags::NAME | ShowFlags::RQLEN,
        cookie: [0xff; 8],
    };
    match dump(SockDiagMessage::UnixRequest(unix)) {
        Ok(msgs) => out.extend(msgs.iter().filter_map(unix_listener)),
        Err(e) => return (netlink_unavailable("unix listeners", &e), None),
    }
    let (owners, note) = socket_owners();
    for l in &mut out {
        l.pids = owners.get(&l.inode).cloned().unwrap_or_default();
    }
    out.sort_by(|a, b| a.local.cmp(&b.local));
    (Fact::Known(out), note)
}

/// TCP connections in SYN-SENT, counted per destination (`127.0.0.1:8000` → 3), sorted by
/// destination: a connecting nginx whose SYNs the backend's full accept queue drops.
pub fn syn_sent() -> Fact<Vec<(String, u32)>> {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for family in [AF_INET, AF_INET6] {
        let msgs = match dump(inet_request(family, TcpStates::SYN_SENT)) {
            Ok(m) => m,
            Err(e) => return netlink_unavailable("TCP connections in SYN-SENT", &e),
        };
        for m in &msgs {
            if let SockDiagMessage::InetResponse(r) = m {
                let id = &r.header.socket_id;
                *counts
                    .entry(endpoint(id.destination_address, id.destination_port))
                    .or_default() += 1;
            }
        }
    }
    Fact::Known(counts.into_iter().collect())
}

/// Socket inode → PIDs holding it, from `/proc/*/fd`, and a note when some processes' fd tables
/// could not be read.
pub fn socket_owners() -> (HashMap<u64, Vec<i32>>, Option<Unavailable>) {
    let mut owners: HashMap<u64, Vec<i32>> = HashMap::new();
    let mut denied = 0usize;
    let Ok(all) = procfs::process::all_processes() else {
        let note = Unavailable {
            what: "socket owners (/proc/*/fd)".into(),
            why: "cannot list /proc".into(),
            how: "mount /proc, or run reflex in the host's PID namespace".into(),
        };
        return (owners, Some(note));
    };
    for p in all.flatten() {
        let fds = match p.fd() {
            Ok(fds) => fds,
            Err(procfs::ProcError::PermissionDenied(_)) => {
                denied += 1;
                continue;
            }
            Err(_) => continue, // exited meanwhile
        };
        for fd in fds.flatten() {
            if let procfs::process::FDTarget::Socket(inode) = fd.target {
                let pids = owners.entry(inode).or_default();
                if !pids.contains(&p.pid) {
                    pids.push(p.pid);
                }
            }
        }
    }
    let note = (denied > 0).then(|| Unavailable {
        what: "socket owners (/proc/*/fd)".into(),
        why: format!("permission denied reading the fd tables of {denied} processes"),
        how: "run as root or with CAP_SYS_PTRACE".into(),
    });
    (owners, note)
}

fn netlink_unavailable<T>(what: &str, e: &io::Error) -> Fact<T> {
    Fact::unavailable(
        &format!("{what} (netlink sock_diag)"),
        e.to_string(),
        "run on Linux with the sock_diag, inet_diag and unix_diag modules loaded",
    )
}

fn inet_request(family: u8, states: TcpStates) -> SockDiagMessage {
    SockDiagMessage::InetRequest(InetRequest {
        family,
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        states,
        socket_id: if family == AF_INET {
            SocketId::new_v4()
        } else {
            SocketId::new_v6()
        },
    })
}

fn tcp_listener(m: &SockDiagMessage) -> Option<Listener> {
    let SockDiagMessage::InetResponse(r) = m else {
        return None;
    };
    let r: &InetResponse = r;
    let id = &r.header.socket_id;
    Some(Listener {
        local: endpoint(id.source_address, id.source_port),
        inode: u64::from(r.header.inode),
        // For a listener inet_diag puts the accept-queue length in rqueue and
        // sk_max_ack_backlog in wqueue (tcp_diag_get_info).
        accept_queue: r.header.recv_queue,
        backlog: r.header.send_queue,
        pids: Vec::new(),
        // Sent for every listening IPv6 socket (Linux 4.2 and later).
        v6only: r.nlas.iter().any(|n| matches!(n, Nla::SkV6Only(true))),
    })
}

fn unix_listener(m: &SockDiagMessage) -> Option<Listener> {
    let SockDiagMessage::UnixResponse(r) = m else {
        return None;
    };
    let local = match r.name() {
        Some(UnixDiagName::Pathname(p)) => {
            format!("unix:{}", String::from_utf8_lossy(p.as_bytes()))
        }
        Some(UnixDiagName::Abstract(a)) => format!("unix:@{}", String::from_utf8_lossy(a)),
        None => "unix:".to_string(),
    };
    Some(Listener {
        local,
        inode: u64::from(r.header.inode),
        accept_queue: r.number_of_pending_connection().unwrap_or(0),
        backlog: r.max_number_of_pending_connection().unwrap_or(0),
        pids: Vec::new(),
        v6only: false,
    })
}

/// `127.0.0.1:8000` or `[::1]:8000`.
fn endpoint(ip: IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}

/// Sends one sock_diag dump request and collects the responses until NLMSG_DONE.
///
/// The one hand-written netlink loop in the crate: the rust-netlink crates give the message
/// types but no request/response driver for sock_diag.
fn dump(request: SockDiagMessage) -> io::Result<Vec<SockDiagMessage>> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?; // port 0: the kernel
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut packet = NetlinkMessage::new(header, request.into());
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut out = Vec::new();
    loop {
        // One datagram holds several netlink messages, each `header.length` long.
        let (data, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < data.len() {
            let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&data[offset..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) => return Err(e.to_io()),
                NetlinkPayload::InnerMessage(m) => out.push(m),
                _ => {}
            }
            if len == 0 {
                break; // malformed; avoid spinning
            }
            // Messages are 4-byte aligned (NLMSG_ALIGN).
            offset += (len + 3) & !3;
        }
        if data.is_empty() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_own_listeners() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        let _unix = std::os::unix::net::UnixListener::bind(&path).expect("bind unix");
        let _c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (fact, _) = listeners();
        let all = fact.known().expect("listeners");
        let me = std::process::id() as i32;
        let t = all
            .iter()
            .find(|l| l.local == format!("127.0.0.1:{port}"))
            .expect("tcp listener");
        assert_eq!(t.accept_queue, 1);
        assert!(t.backlog > 0);
        assert!(t.pids.contains(&me));
        let u = all
            .iter()
            .find(|l| l.local == format!("unix:{}", path.display()))
            .expect("unix listener");
        assert!(u.pids.contains(&me));
        assert!(syn_sent().known().is_some());
    }
}
