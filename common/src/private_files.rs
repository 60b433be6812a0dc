//! Files only their owner may read. The collector's data dir holds every
//! host's snapshots (users, key comments, process command lines); it must
//! not depend on the unit's `UMask=` to stay private, and a library that
//! creates files of its own accord (sled: blobs and snapshots, at any
//! moment) can only be made to create them 0600 through the umask.

/// Sets the process umask so every file and directory created from now on
/// has no group or other permissions (files 0600, directories 0700). Call
/// it at the start of a command that writes private data, before threads
/// start creating files.
#[allow(unsafe_code)]
pub fn owner_only_umask() {
    // SAFETY: umask(2) only replaces the process's mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}
