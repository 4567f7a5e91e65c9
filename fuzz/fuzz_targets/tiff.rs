//! Any bytes named `.tif` must give signals or an error, never a panic, hang or huge allocation.
#![no_main]
use atomlens_io::{Limits, NamedFile, read_one};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_one(NamedFile::new("fuzz.tif", data.to_vec()), &Limits { max_pixels: 1 << 22 });
});
