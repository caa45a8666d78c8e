//! Terminals from the sandbox's own `/dev/pts`. bubblewrap runs this binary inside the
//! sandbox as `cloudos-agent pty-helper -- <shell…>`: it opens a PTY there, starts the shell on
//! it, hands the master to the agent over its stdin (a Unix socket) and becomes the shell
//! (`exec`). The agent then reads and writes that master itself, so one PTY sits between the
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

/// The helper's main, inside the sandbox: becomes the shell (returns only if that failed,
/// with the exit code to use).
pub fn helper_main(shell: &[String]) -> i32 {
    let Some(program) = shell.first() else {
        eprintln!("pty-helper: no shell given");
        return 125;
    };
    let err = match become_shell(program, &shell[1..]) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    eprintln!("pty-helper: {err}");
    125
}

/// Opens a PTY, makes its terminal this process's controlling terminal and standard streams,
/// sends the master to the agent and `exec`s the shell: no process stays behind to wait for
/// the shell, so an idle terminal costs its shell and nothing more.
fn become_shell(program: &str, args: &[String]) -> io::Result<std::convert::Infallible> {
    use std::os::unix::process::CommandExt;
    // stdin is the agent's socket; a close-on-exec duplicate keeps it from the shell.
    let control = io::stdin().as_fd().try_clone_to_owned()?;
    // The master is close-on-exec: only the agent keeps it.
    let (master, pts) = pty_process::blocking::open().map_err(io::Error::other)?;
    let master = OwnedFd::from(master);
    // A session of its own (EPERM: it already leads one), with this terminal as its
    // controlling terminal, so job control and ^C work in the shell.
    match rustix::process::setsid() {
        Ok(_) | Err(rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    rustix::process::ioctl_tiocsctty(&pts)?;
    rustix::stdio::dup2_stdin(&pts)?;
    rustix::stdio::dup2_stdout(&pts)?;
    rustix::stdio::dup2_stderr(&pts)?;
    drop(pts);
    send_fd(&control, &master)?;
    drop(master);
    drop(control);
    Err(std::process::Command::new(program).args(args).exec())
}
