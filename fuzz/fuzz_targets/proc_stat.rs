#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| driftwatch_agent::fuzz::fuzz_proc_stat(data));
