//! Types that hold secrets: zeroized when dropped, printed as `[redacted]`, and (for key material)
//! locked in memory where the OS allows, so they are not written to swap.
//!
//! Secrets cross module boundaries only inside these types.

use std::cell::Cell;
use std::fmt;
use std::sync::Once;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

/// A secret text value (a consumer secret, a private key PEM, a passphrase).
///
/// Its buffer is zeroized on drop; `Debug` and `Display` never show it. Read it with
/// [`SecretString::expose`], and only where the value is about to be used.
///
/// Copies are explicit, as in the `secrecy` crate: there is no `Clone`, only
/// [`SecretString::duplicate`]. Serializing one fails unless the caller opened an
/// [`exposing`] scope (the vault payload and the agent's frames do): `serde_json::to_string`
/// of an entry cannot print its secrets by accident. Comparison takes the same time whatever
/// the position of the first difference.
#[derive(Default)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wrap a string; the caller's copy is moved, not duplicated.
    pub fn new(value: String) -> Self {
        SecretString(Zeroizing::new(value))
    }

    /// Take UTF-8 bytes (zeroizing the input buffer either way).
    pub fn from_utf8(bytes: Zeroizing<Vec<u8>>) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        let mut bytes = bytes;
        let owned = std::mem::take(&mut *bytes);
        // Cannot fail: checked just above. The Vec's buffer moves into the String without a copy.
        Ok(SecretString::new(
            String::from_utf8(owned).unwrap_or_default(),
        ))
    }

    /// The secret text. Keep the borrow short.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A second copy of the secret, zeroized on its own drop. The only way to copy one.
    pub fn duplicate(&self) -> SecretString {
        SecretString::new(self.0.as_str().to_owned())
    }
}

impl PartialEq for SecretString {
    /// Equal contents; the time depends on the lengths only, not on where the values differ.
    fn eq(&self, other: &SecretString) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for SecretString {}

thread_local! {
    /// How many [`exposing`] scopes are open on this thread.
    static EXPOSING: Cell<u32> = const { Cell::new(0) };
}

/// Run `f` with serialization of [`SecretString`]s allowed on this thread: for the encoders
/// whose output is the secret's own protected form (the encrypted vault payload, the agent's
/// frames on its private socket). Anywhere else serializing a secret is an error.
pub fn exposing<T>(f: impl FnOnce() -> T) -> T {
    struct Close;
    impl Drop for Close {
        fn drop(&mut self) {
            EXPOSING.with(|n| n.set(n.get() - 1));
        }
    }
    EXPOSING.with(|n| n.set(n.get() + 1));
    let _close = Close;
    f()
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for SecretString {
    /// The text, inside an [`exposing`] scope; an error anywhere else.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if EXPOSING.with(Cell::get) == 0 {
            return Err(serde::ser::Error::custom(
                "refusing to serialize a secret value outside the vault and agent encoders",
            ));
        }
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretString::new)
    }
}

/// A 256-bit key in a slot of the locked key arena (see [`arena`]): its page is locked in memory
/// where allowed for as long as the process lives, so no key's drop can unlock a page another
/// live key shares. Zeroized on drop; `Debug` prints `[redacted]`.
pub struct SecretKey {
    slot: std::ptr::NonNull<[u8; 32]>,
}

// SAFETY: a `SecretKey` owns its slot exclusively (the arena hands each slot to one key until
// that key is dropped), so moving it to another thread or sharing `&SecretKey` is as safe as for
// a `Box<[u8; 32]>`.
#[allow(unsafe_code)]
unsafe impl Send for SecretKey {}
// SAFETY: see `Send`: shared references only read the slot.
#[allow(unsafe_code)]
unsafe impl Sync for SecretKey {}

impl SecretKey {
    /// A key of all zero bytes, to be filled in place (so the key never sits on the stack).
    pub fn zeroed() -> Self {
        SecretKey {
            slot: arena::take(),
        }
    }

    /// A copy of `bytes` in a locked slot.
    pub fn from_slice(bytes: &[u8; 32]) -> Self {
        let mut key = SecretKey::zeroed();
        key.expose_mut().copy_from_slice(bytes);
        key
    }

    /// The key bytes.
    #[allow(unsafe_code)]
    pub fn expose(&self) -> &[u8; 32] {
        // SAFETY: the slot is live (returned to the arena only in `drop`) and owned by `self`.
        unsafe { self.slot.as_ref() }
    }

    /// The key bytes, for filling in place.
    #[allow(unsafe_code)]
    pub fn expose_mut(&mut self) -> &mut [u8; 32] {
        // SAFETY: as in `expose`, and `&mut self` makes this the only reference.
        unsafe { self.slot.as_mut() }
    }
}

impl Clone for SecretKey {
    fn clone(&self) -> Self {
        SecretKey::from_slice(self.expose())
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.expose_mut().zeroize();
        arena::give_back(self.slot);
    }
}

impl PartialEq for SecretKey {
    /// Equal bytes, compared in constant time.
    fn eq(&self, other: &SecretKey) -> bool {
        self.expose()
            .iter()
            .zip(other.expose())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

impl Eq for SecretKey {}

impl Serialize for SecretKey {
    /// The 32 bytes, inside an [`exposing`] scope (a slice's key in the encrypted vault
    /// payload); an error anywhere else.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if EXPOSING.with(Cell::get) == 0 {
            return Err(serde::ser::Error::custom(
                "refusing to serialize a key outside the vault encoder",
            ));
        }
        self.expose().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SecretKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut bytes = Zeroizing::new(<[u8; 32]>::deserialize(deserializer)?);
        let key = SecretKey::from_slice(&bytes);
        bytes.zeroize();
        Ok(key)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// The locked key arena: page-aligned 4 KiB blocks of 128 key slots each, locked in memory once
/// when allocated and never unlocked or freed (a process holds a handful of keys, so this is one
/// page in practice). Page locks do not nest (one `munlock` undoes every `mlock` of the page),
/// so locking per key would let the drop of a temporary key unlock a live one on the same page;
/// here nothing is ever unlocked. A slot is zeroized by its key before it comes back.
mod arena {
    use std::alloc::{Layout, alloc_zeroed, handle_alloc_error};
    use std::ptr::NonNull;
    use std::sync::Mutex;

    const SLOT: usize = 32;
    const SLOTS: usize = 128;
    const BLOCK: usize = SLOT * SLOTS;

    /// One block: its address and a bit per slot, set while the slot is free.
    struct Block {
        base: NonNull<u8>,
        free: u128,
    }

    // SAFETY: a block is only an address and a bitmap; slots are handed out under the mutex.
    #[allow(unsafe_code)]
    unsafe impl Send for Block {}

    static BLOCKS: Mutex<Vec<Block>> = Mutex::new(Vec::new());

    fn blocks() -> std::sync::MutexGuard<'static, Vec<Block>> {
        // Bitmaps are updated in one statement: a panic elsewhere cannot leave one half-done.
        BLOCKS.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A zeroed slot of 32 bytes in a locked block.
    #[allow(unsafe_code)]
    pub(super) fn take() -> NonNull<[u8; 32]> {
        let mut blocks = blocks();
        let block = match blocks.iter_mut().position(|b| b.free != 0) {
            Some(i) => &mut blocks[i],
            None => {
                let layout = Layout::from_size_align(BLOCK, BLOCK).expect("constant layout");
                // SAFETY: the layout has a non-zero size. The block is never freed.
                let base = NonNull::new(unsafe { alloc_zeroed(layout) })
                    .unwrap_or_else(|| handle_alloc_error(layout));
                super::lock_memory(base.as_ptr(), BLOCK);
                blocks.push(Block {
                    base,
                    free: u128::MAX,
                });
                blocks.last_mut().expect("just pushed")
            }
        };
        let index = block.free.trailing_zeros() as usize;
        block.free &= !(1u128 << index);
        // SAFETY: index < 128, so the slot lies inside the block.
        unsafe { block.base.add(index * SLOT) }.cast()
    }

    /// Return a slot (already zeroized by its key) to its block.
    pub(super) fn give_back(slot: NonNull<[u8; 32]>) {
        let addr = slot.as_ptr() as usize;
        let mut blocks = blocks();
        if let Some(block) = blocks
            .iter_mut()
            .find(|b| (b.base.as_ptr() as usize..b.base.as_ptr() as usize + BLOCK).contains(&addr))
        {
            block.free |= 1u128 << ((addr - block.base.as_ptr() as usize) / SLOT);
        }
    }
}

/// Read everything from `fd` with direct `read(2)` calls into one zeroizing buffer allocated
/// up front: no std buffering layer and no reallocation, so no stray copy of a secret is left
/// in freed memory. Reads at most `max + 1` bytes; the caller treats a longer result as too big.
pub fn read_unbuffered(
    fd: impl std::os::fd::AsFd,
    max: usize,
) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; max + 1]);
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// Fill `key` from `fd` with direct reads (exactly 32 bytes).
pub fn read_key_unbuffered(fd: impl std::os::fd::AsFd, key: &mut SecretKey) -> std::io::Result<()> {
    let buf = key.expose_mut();
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

static MLOCK_FAILED: Once = Once::new();

/// Lock `len` bytes at `ptr` into RAM, for the life of the process. A failure (e.g.
/// RLIMIT_MEMLOCK) is remembered so the binary can warn once, and is otherwise harmless.
#[allow(unsafe_code)]
fn lock_memory(ptr: *mut u8, len: usize) {
    // SAFETY: the pointer and length describe a live allocation that is never freed; mlock does
    // not access it.
    if unsafe { rustix::mm::mlock(ptr.cast(), len) }.is_err() {
        MLOCK_FAILED.call_once(|| {});
    }
}

/// True when some key could not be locked in memory (so it may reach swap).
pub fn memory_lock_failed() -> bool {
    MLOCK_FAILED.is_completed()
}

/// Turn off core dumps and make the process non-dumpable, so neither a crash nor a same-user
/// debugger (ptrace without CAP_SYS_PTRACE) can read secrets out of memory.
///
/// Call once, before any secret is read. Failures are returned for the caller to report; the
/// process works on regardless.
pub fn harden_process() -> std::io::Result<()> {
    use rustix::process::{
        DumpableBehavior, Resource, Rlimit, getrlimit, set_dumpable_behavior, setrlimit,
    };
    let limit = getrlimit(Resource::Core);
    let _ = ORIGINAL_CORE_LIMIT.set(limit.current);
    // Only the soft limit: the hard one stays, so a program we exec (`sfvault exec`) gets the
    // user's own setting back.
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: limit.maximum,
        },
    )?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    Ok(())
}

/// What [`lock_all_memory`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllMemory {
    /// Every page, present and future, is locked as it is touched (`mlockall`).
    Locked,
    /// Not attempted: the locked-memory limit (in bytes) is finite and this process may not
    /// exceed it, and locking all future memory under it would make allocations fail.
    LimitTooLow(u64),
    /// The kernel refused.
    Refused,
}

/// Lock every page of this process, present and future, in RAM as it is touched, so decrypted
/// entries (not only keys) never reach swap: for the agent, which holds a whole vault for hours.
///
/// Only attempted when nothing can make it fail later: an unlimited `RLIMIT_MEMLOCK`, or
/// `CAP_IPC_LOCK` (root, or granted). Under a finite limit (8 MiB for most users) a growing
/// heap would hit it and allocations would fail, so it is left off and reported instead.
pub fn lock_all_memory() -> AllMemory {
    use rustix::mm::{MlockAllFlags, mlockall};
    use rustix::process::{Resource, getrlimit};
    if let Some(limit) = getrlimit(Resource::Memlock).current
        && !has_cap_ipc_lock()
    {
        return AllMemory::LimitTooLow(limit);
    }
    let flags = MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT;
    match mlockall(flags) {
        Ok(()) => AllMemory::Locked,
        Err(_) => AllMemory::Refused,
    }
}

/// Whether this process holds `CAP_IPC_LOCK` in its effective set (from /proc/self/status).
fn has_cap_ipc_lock() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

static ORIGINAL_CORE_LIMIT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();

/// Give the core-dump limit back to what it was before [`harden_process`], just before this
/// process execs another program (dumpability is reset by the kernel at exec).
pub fn restore_core_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    if let Some(original) = ORIGINAL_CORE_LIMIT.get() {
        let maximum = getrlimit(Resource::Core).maximum;
        let _ = setrlimit(
            Resource::Core,
            Rlimit {
                current: *original,
                maximum,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_serialize_only_when_exposing() {
        let s = SecretString::new("hunter2-canary".into());
        let refused = serde_json::to_string(&s).unwrap_err().to_string();
        assert!(refused.contains("refusing") && !refused.contains("hunter2"));
        assert_eq!(
            exposing(|| serde_json::to_string(&s)).unwrap(),
            "\"hunter2-canary\""
        );
        // The scope closes, also after a panic inside it.
        assert!(serde_json::to_string(&s).is_err());
        let _ = std::panic::catch_unwind(|| exposing(|| panic!("inside")));
        assert!(serde_json::to_string(&s).is_err());
    }

    #[test]
    fn copies_and_comparisons() {
        let s = SecretString::new("abc".into());
        let d = s.duplicate();
        assert_eq!(s, d);
        assert_ne!(s.expose().as_ptr(), d.expose().as_ptr());
        assert_ne!(s, SecretString::new("abd".into()));
        assert_ne!(s, SecretString::new("abcd".into()));
    }

    #[test]
    fn debug_is_redacted() {
        let s = SecretString::new("hunter2-canary".into());
        assert_eq!(format!("{s:?}"), "[redacted]");
        let k = SecretKey::from_slice(&[7u8; 32]);
        assert!(!format!("{k:?}").contains('7'));
    }

    #[test]
    fn arena_slots_are_distinct_zeroed_and_reused() {
        let keys: Vec<SecretKey> = (0..300u16)
            .map(|i| SecretKey::from_slice(&[(i % 251) as u8 + 1; 32]))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(
                k.expose(),
                &[(i % 251) as u8 + 1; 32],
                "key {i} overwritten"
            );
        }
        let copy = keys[7].clone();
        assert_eq!(copy.expose(), keys[7].expose());
        drop(keys);
        // A slot comes back zeroed: a new key never starts with an old key's bytes.
        assert_eq!(SecretKey::zeroed().expose(), &[0u8; 32]);
    }

    #[test]
    fn from_utf8_rejects_invalid() {
        assert!(SecretString::from_utf8(Zeroizing::new(vec![0xff, 0xfe])).is_err());
        let ok = SecretString::from_utf8(Zeroizing::new(b"abc".to_vec())).unwrap();
        assert_eq!(ok.expose(), "abc");
    }
}
