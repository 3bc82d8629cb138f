//! The private key as a file the child reads through `/dev/fd/N`: a sealed memfd (in memory,
//! never on disk, unchangeable once written) inherited across exec.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::error::{Error, Result};
use crate::secret::SecretString;

/// A memfd holding a secret, open without close-on-exec so a child inherits it.
pub struct SecretFd {
    fd: OwnedFd,
}

impl SecretFd {
    /// Write `secret` into a new memfd, seal it against writes, and rewind it.
    pub fn new(name: &str, secret: &SecretString) -> Result<SecretFd> {
        use rustix::fs::{MemfdFlags, SealFlags, fcntl_add_seals, memfd_create};
        let fail = |e: std::io::Error| Error::failed_with("cannot create an in-memory key file", e);
        let fd = memfd_create(name, MemfdFlags::ALLOW_SEALING).map_err(|e| fail(e.into()))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(secret.expose().as_bytes()).map_err(fail)?;
        file.write_all(b"\n").map_err(fail)?;
        let fd = OwnedFd::from(file);
        fcntl_add_seals(
            &fd,
            SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL,
        )
        .map_err(|e| fail(e.into()))?;
        rustix::fs::seek(&fd, rustix::fs::SeekFrom::Start(0)).map_err(|e| fail(e.into()))?;
        Ok(SecretFd { fd })
    }

    /// The path a child process opens: `/dev/fd/N`.
    pub fn path(&self) -> String {
        format!("/dev/fd/{}", self.fd.as_raw_fd())
    }
}
