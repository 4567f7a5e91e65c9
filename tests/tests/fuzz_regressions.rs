#![allow(clippy::unwrap_used)]
// The one unsafe code of the project: a counting wrapper around the system allocator, to see
// how large the readers' allocations get (no safe API tells).
#![allow(unsafe_code)]
//! What `cargo fuzz` found in the readers, kept as tests: each case is a shared vendor file with
//! the fuzzer's byte changes applied (the files themselves are not ours to copy). Every read
//! must end in signals or an error, with no single allocation beyond what the file can justify.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use atomlens_io::{Limits, NamedFile, read_one};
use atomlens_tests::{shared_dir, skip};

/// The system allocator, remembering the largest single request.
struct Largest;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Largest = Largest;

/// A Velox EMD whose metadata dataset's header declares ~3.9 GB: the HDF5 reader allocated
/// all of it for the fill value (the `emd` target's out-of-memory). Now the metadata read is
/// bounded (`third_party/openreadout-em`, `read_bounded`).
#[test]
fn a_velox_metadata_dataset_declaring_gigabytes_is_not_allocated() {
    let Some(shared) = shared_dir() else {
        return skip("a_velox_metadata_dataset_declaring_gigabytes_is_not_allocated");
    };
    let mut bytes = std::fs::read(shared.join("data/formats/fei_example_dpc_titles.emd")).unwrap();
    for (at, v) in [
        (310492, 0o2),
        (334340, 0o207),
        (334341, 0o213),
        (334342, 0o226),
        (334343, 0o232),
        (411606, 0o106),
        (665852, 0o61),
        (735920, 0o0),
        (735922, 0o1),
    ] {
        bytes[at] = v;
    }
    LARGEST.store(0, Ordering::Relaxed);
    let _ = read_one(NamedFile::new("oom.emd", bytes), &Limits { max_pixels: 1 << 22 });
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(largest < 512 << 20, "a single allocation of {largest} bytes");
}
