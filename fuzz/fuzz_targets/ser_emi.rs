//! A TIA pair: the input is split into a `.ser` and an `.emi`, read through the `.emi`.
#![no_main]
use atomlens_io::{Limits, NamedFile, read};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |&b| (b as usize * data.len()) / 256);
    let (ser, emi) = data.split_at(cut);
    let files = vec![NamedFile::new("f.emi", emi.to_vec()), NamedFile::new("f_1.ser", ser.to_vec())];
    let _ = read("f.emi", files.clone(), &Limits { max_pixels: 1 << 22 });
    let _ = read("f_1.ser", files, &Limits { max_pixels: 1 << 22 });
});
