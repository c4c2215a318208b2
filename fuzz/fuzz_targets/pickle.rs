#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dak_fuzz_targets::pickle(data));
