//! MRC2014 writer for 32-bit float volumes (mode 2), as reconstructions are exported. Written by
//! hand: no maintained Rust crate writes MRC, and the format is a 1024-byte header of
//! little-endian words followed by the voxels, x fastest (Cheng et al. 2015, J. Struct. Biol.).
use atomlens_core::Calibration;

use crate::error::IoError;

/// An MRC file of the `nx × ny × nz` volume `voxels` (x fastest, then y, then z), with the
/// voxel size from `cal` (cell dimensions in Å) and one label.
pub fn write_f32(
    nx: usize,
    ny: usize,
    nz: usize,
    voxels: &[f32],
    cal: &Calibration,
    label: &str,
) -> Result<Vec<u8>, IoError> {
    if nx * ny * nz == 0 || voxels.len() != nx * ny * nz || [nx, ny, nz].iter().any(|&n| n > i32::MAX as usize) {
        return Err(IoError::Write {
            what: "MRC".into(),
            detail: format!("{} voxels do not make {nx}×{ny}×{nz}", voxels.len()),
        });
    }
    let finite = voxels.iter().filter(|v| v.is_finite());
    let (min, max) = finite.clone().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let n = finite.clone().count().max(1) as f64;
    let mean = finite.clone().map(|&v| v as f64).sum::<f64>() / n;
    let rms = (finite.map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let voxel_a = if cal.is_calibrated() { (cal.pixel_size * 10.0) as f32 } else { 1.0 };
    let mut h = vec![0u8; 1024];
    let mut put_i = |word: usize, v: i32| h[4 * word..4 * word + 4].copy_from_slice(&v.to_le_bytes());
    for (w, v) in [(0, nx), (1, ny), (2, nz), (7, nx), (8, ny), (9, nz)] {
        put_i(w, v as i32);
    }
    put_i(3, 2); // mode 2: float32
    for (w, v) in [(16, 1), (17, 2), (18, 3)] {
        put_i(w, v); // MAPC/MAPR/MAPS: columns x, rows y, sections z
    }
    put_i(22, 1); // ISPG 1: a volume
    put_i(27, 20140); // NVERSION
    put_i(55, 1); // one label
    let mut put_f = |word: usize, v: f32| h[4 * word..4 * word + 4].copy_from_slice(&v.to_le_bytes());
    for (w, n) in [(10, nx), (11, ny), (12, nz)] {
        put_f(w, n as f32 * voxel_a);
    }
    for w in 13..16 {
        put_f(w, 90.0);
    }
    put_f(19, min);
    put_f(20, max);
    put_f(21, mean as f32);
    put_f(54, rms as f32);
    h[208..212].copy_from_slice(b"MAP ");
    h[212..216].copy_from_slice(&[0x44, 0x44, 0, 0]); // little-endian stamp
    let text: Vec<u8> = label.bytes().filter(|b| b.is_ascii() && !b.is_ascii_control()).take(80).collect();
    h[224..224 + text.len()].copy_from_slice(&text);
    h.reserve(voxels.len() * 4);
    for v in voxels {
        h.extend_from_slice(&v.to_le_bytes());
    }
    Ok(h)
}

/// An MRC image stack (ISPG 0) of `angles.len()` projections of `nx × ny`, with each one's tilt
/// angle in a SerialEM extended header (EXTTYP `SERI`, NREAL bit 1: hundredths of a degree as a
/// 16-bit integer per section), which IMOD, SerialEM and atomlens read back.
pub fn write_tilt_series(
    nx: usize,
    ny: usize,
    frames: &[f32],
    angles_deg: &[f64],
    cal: &Calibration,
    label: &str,
) -> Result<Vec<u8>, IoError> {
    if angles_deg.iter().any(|a| !(a.abs() <= 90.0)) {
        return Err(IoError::Write { what: "MRC".into(), detail: "tilt angles must lie within ±90°".into() });
    }
    let n = angles_deg.len();
    let mut b = write_f32(nx, ny, n, frames, cal, label)?;
    b[88..92].copy_from_slice(&0i32.to_le_bytes()); // ISPG 0: a stack of images
    b[92..96].copy_from_slice(&(2 * n as i32).to_le_bytes()); // NSYMBT
    b[104..108].copy_from_slice(b"SERI");
    b[128..130].copy_from_slice(&2i16.to_le_bytes()); // NINT: bytes per section
    b[130..132].copy_from_slice(&1i16.to_le_bytes()); // NREAL: which items (1 = tilt angle)
    let ext: Vec<u8> = angles_deg.iter().flat_map(|a| ((a * 100.0).round() as i16).to_le_bytes()).collect();
    b.splice(1024..1024, ext);
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, NamedFile, read_one};

    #[test]
    fn a_written_volume_reads_back_with_its_shape_values_and_voxel_size() {
        let (nx, ny, nz) = (5, 4, 3);
        let vox: Vec<f32> = (0..nx * ny * nz).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bytes = write_f32(nx, ny, nz, &vox, &Calibration::nm(0.25), "atomlens test").unwrap();
        assert_eq!(bytes.len(), 1024 + 4 * vox.len());
        let s = read_one(NamedFile::new("v.mrc", bytes), &Limits::NATIVE).unwrap();
        assert_eq!((s[0].width, s[0].height, s[0].frames), (nx, ny, nz));
        assert!((s[0].calibration.pixel_size - 0.25).abs() < 1e-6, "{:?}", s[0].calibration);
        assert_eq!(s[0].to_f32(), vox);
        assert!(write_f32(2, 2, 2, &vox, &Calibration::nm(1.0), "").is_err());
    }

    #[test]
    fn tilt_angles_come_from_a_serialem_header_or_its_mdoc() {
        let angles = [-60.0, -29.5, 0.0, 30.25, 60.0];
        let bytes = write_tilt_series(4, 4, &[1.0; 80], &angles, &Calibration::nm(0.5), "tilts").unwrap();
        let s = read_one(NamedFile::new("t.mrc", bytes), &Limits::NATIVE).unwrap();
        assert_eq!(s[0].metadata.tilt_angles_deg.as_deref(), Some(&angles[..]));
        assert_eq!(s[0].to_f32(), vec![1.0; 80]);

        let plain = write_f32(4, 4, 3, &[2.0; 48], &Calibration::nm(0.5), "").unwrap();
        let mdoc = "PixelSpacing = 5\nImageFile = p.mrc\n\n[ZValue = 0]\nTiltAngle = -45.01\n\n\
                    [ZValue = 1]\nTiltAngle = 0.02\n\n[ZValue = 2]\nTiltAngle = 44.98\n";
        let files =
            vec![NamedFile::new("p.mrc", plain.clone()), NamedFile::new("p.mrc.mdoc", mdoc.as_bytes().to_vec())];
        let s = crate::read("p.mrc", files, &Limits::NATIVE).unwrap();
        assert_eq!(s[0].metadata.tilt_angles_deg.as_deref(), Some(&[-45.01, 0.02, 44.98][..]));
        // Without either, none.
        let s = read_one(NamedFile::new("p.mrc", plain), &Limits::NATIVE).unwrap();
        assert_eq!(s[0].metadata.tilt_angles_deg, None);
    }
}
