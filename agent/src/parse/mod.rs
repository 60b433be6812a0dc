//! Pure parsers: text in, typed values out. No IO, no clock. Each is tested
//! on the real-world samples in `../shared/fixtures`.

pub mod docker_inspect;
