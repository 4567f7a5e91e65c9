//! PNG and JPEG through the `image` crate, with the size limit checked from the header.
#![no_main]
use atomlens_io::{Limits, NamedFile, read_one};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_one(NamedFile::new("fuzz.png", data.to_vec()), &Limits { max_pixels: 1 << 22 });
    let _ = read_one(NamedFile::new("fuzz.jpg", data.to_vec()), &Limits { max_pixels: 1 << 22 });
});
