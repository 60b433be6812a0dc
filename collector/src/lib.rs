//! driftwatch collector and admin CLI. The binaries in `src/bin` are thin
//! layers over this library.

pub mod render;
