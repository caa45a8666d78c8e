//! Terminals from the sandbox's own `/dev/pts`. bubblewrap runs this binary inside the
//! sandbox as `cloudos-agent pty-helper -- <shell…>`: it opens a PTY there, starts the shell on
//! it, hands the master to the agent over its stdin (a Unix socket) and exits with the shell's
//! code. The agent then reads and writes that master itself, so one PTY sits between the
//! shell and the socket, `tty` names a `/dev/pts` of the sandbox, and nested terminals (tmux)
//! get theirs from the same place.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The first argument that selects the helper.
pub const HELPER_ARG: &str = "pty-helper";

fn send_fd(socket: &impl AsFd, fd: &OwnedFd) -> io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd.as_fd()];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(b"P")],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}

/// Receives the master the helper sends (waits at most `within`).
pub fn recv_fd(socket: &UnixStream, within: Duration) -> io::Result<OwnedFd> {
    socket.set_read_timeout(Some(within))?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let got = rustix::net::recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    if got.bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the shell did not start in the sandbox",
        ));
    }
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(io::Error::other("the sandbox sent no terminal"))
}

/// The helper's main, inside the sandbox: returns the process exit code.
pub fn helper_main(shell: &[String]) -> i32 {
    let Some(program) = shell.first() else {
        eprintln!("pty-helper: no shell given");
        return 125;
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pty-helper: {e}");
            return 125;
        }
    };
    rt.block_on(async {
        let started = async {
            // stdin is the agent's socket; a close-on-exec duplicate keeps it from the shell.
            let control = io::stdin().as_fd().try_clone_to_owned()?;
            let (pty, pts) = pty_process::open().map_err(io::Error::other)?;
            let child = pty_process::Command::new(program)
                .args(&shell[1..])
                .spawn(pts)
                .map_err(io::Error::other)?;
            let master: OwnedFd = pty.into();
            send_fd(&control, &master)?;
            Ok::<_, io::Error>(child)
        };
        let mut child = match started.await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("pty-helper: {e}");
                return 125;
            }
        };
        match child.wait().await {
            Ok(status) => status.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                128 + status.signal().unwrap_or(0)
            }),
            Err(_) => 125,
        }
    })
}
