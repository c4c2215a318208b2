#![no_main]
// dak-io contains the `parquet` crate's panics on damaged pages (it asserts
// on some malformed bytes) and turns them into errors. libfuzzer-sys's
// abort-on-panic hook would count those contained panics as crashes, so
// this target puts the default hook back; a panic that escapes the target
// still aborts (libfuzzer-sys catches it at the boundary).
libfuzzer_sys::fuzz_target!(
    init: {
        let _ = std::panic::take_hook();
    },
    |data: &[u8]| dak_fuzz_targets::parquet_shard(data)
);
