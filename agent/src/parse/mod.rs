//! Pure parsers: text in, typed values out. No IO, no clock. Each is tested
//! on the real-world samples in `../shared/fixtures`.

pub mod mdstat;
pub mod verdict;
pub mod megacli;
pub mod megaraid;
pub mod storcli;
pub mod dpkg;
pub mod rpm;
