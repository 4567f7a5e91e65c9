//! What a reader returns: native samples plus shape, calibration and metadata.
use atomlens_core::{Calibration, CoreError, Image, Stack};
use serde::{Deserialize, Serialize};

/// Sample type as stored in the file (numpy names in [`DType::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum DType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    /// Two f32 (real, imaginary).
    C64,
    /// Two f64 (real, imaginary).
    C128,
}

impl DType {
    /// numpy's name (`uint16`, `float32`, `complex64`, …), as RosettaSciIO reports it.
    pub fn name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::U16 => "uint16",
            DType::I16 => "int16",
            DType::U32 => "uint32",
            DType::I32 => "int32",
            DType::U64 => "uint64",
            DType::I64 => "int64",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::C64 => "complex64",
            DType::C128 => "complex128",
        }
    }

    /// Bytes per sample.
    pub fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 | DType::C64 => 8,
            DType::C128 => 16,
        }
    }
}

/// The acquisition metadata atomlens shows and keeps with results. Absent means not recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Human name of the format (`Gatan DM3`, `TIFF`, …).
    pub format: String,
    /// Accelerating voltage in kV.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voltage_kv: Option<f64>,
    /// Microscope model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub microscope: Option<String>,
    /// Detector (HAADF, DF4, camera …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector: Option<String>,
    /// Imaging mode (STEM, TEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Indicated magnification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub magnification: Option<f64>,
    /// Pixel dwell time in µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dwell_time_us: Option<f64>,
    /// Acquisition date and time, ISO 8601.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acquired: Option<String>,
    /// Reader remarks the user should see (e.g. "complex data shown as magnitude").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Tilt angle of every frame (degrees), where the file records one for each: an MRC's FEI
    /// or SerialEM extended header, or the SerialEM `.mdoc` dropped with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tilt_angles_deg: Option<Vec<f64>>,
}

/// One image or stack read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// Title in the file (may be empty).
    pub title: String,
    /// Sample type in the file.
    pub dtype: DType,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Frames (1 for a single image).
    pub frames: usize,
    /// Native samples, little-endian, frame-major then row-major (x fastest).
    pub data: Vec<u8>,
    /// Pixel size.
    pub calibration: Calibration,
    /// Acquisition metadata.
    pub metadata: Metadata,
}

macro_rules! convert {
    ($bytes:expr, $t:ty, $n:expr) => {
        $bytes
            .chunks_exact($n)
            .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk of sample size")) as f32)
            .collect()
    };
}

/// Samples of type `dtype` (little-endian bytes) as f32: complex samples become their
/// magnitude; 64-bit integers round.
fn decode_f32(dtype: DType, b: &[u8]) -> Vec<f32> {
    match dtype {
        DType::U8 => b.iter().map(|&v| v as f32).collect(),
        DType::I8 => b.iter().map(|&v| v as i8 as f32).collect(),
        DType::U16 => convert!(b, u16, 2),
        DType::I16 => convert!(b, i16, 2),
        DType::U32 => convert!(b, u32, 4),
        DType::I32 => convert!(b, i32, 4),
        DType::U64 => convert!(b, u64, 8),
        DType::I64 => convert!(b, i64, 8),
        DType::F32 => convert!(b, f32, 4),
        DType::F64 => convert!(b, f64, 8),
        DType::C64 => {
            let v: Vec<f32> = convert!(b, f32, 4);
            v.as_chunks::<2>().0.iter().map(|c| c[0].hypot(c[1])).collect()
        }
        DType::C128 => {
            let v: Vec<f64> = b.as_chunks::<8>().0.iter().map(|c| f64::from_le_bytes(*c)).collect();
            v.as_chunks::<2>().0.iter().map(|c| c[0].hypot(c[1]) as f32).collect()
        }
    }
}

impl Signal {
    /// Pixels as f32 (complex samples become their magnitude; 64-bit integers round).
    pub fn to_f32(&self) -> Vec<f32> {
        decode_f32(self.dtype, &self.data)
    }

    /// Total pixels (width × height × frames).
    pub fn pixel_count(&self) -> usize {
        self.width * self.height * self.frames
    }

    /// All frames as an f32 stack.
    pub fn to_stack(&self) -> Result<Stack, CoreError> {
        Stack::from_vec(self.width, self.height, self.frames, self.to_f32(), self.calibration.clone())
    }

    /// Frame `t` as an f32 image.
    pub fn frame(&self, t: usize) -> Result<Image, CoreError> {
        if t >= self.frames {
            return Err(CoreError::InvalidParameter {
                name: "frame", reason: format!("{t} ≥ {} frames", self.frames)
            });
        }
        let plane = self.width * self.height * self.dtype.size();
        let pixels = decode_f32(self.dtype, &self.data[t * plane..(t + 1) * plane]);
        Image::from_vec(self.width, self.height, pixels, self.calibration.clone())
    }
}

/// Little-endian bytes of typed samples (what the TIFF and raster readers produce).
pub(crate) fn le_bytes<T: Copy, const N: usize>(v: &[T], to: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * N);
    for &x in v {
        out.extend_from_slice(&to(x));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(dtype: DType, data: Vec<u8>, n: usize) -> Signal {
        Signal {
            title: String::new(),
            dtype,
            width: n,
            height: 1,
            frames: 1,
            data,
            calibration: Calibration::uncalibrated(),
            metadata: Metadata::default(),
        }
    }

    #[test]
    fn every_dtype_converts() {
        assert_eq!(sig(DType::I16, le_bytes(&[-3i16, 7], i16::to_le_bytes), 2).to_f32(), vec![-3.0, 7.0]);
        assert_eq!(sig(DType::U32, le_bytes(&[70000u32], u32::to_le_bytes), 1).to_f32(), vec![70000.0]);
        assert_eq!(sig(DType::F64, le_bytes(&[0.5f64], f64::to_le_bytes), 1).to_f32(), vec![0.5]);
        assert_eq!(sig(DType::I8, vec![0xFF], 1).to_f32(), vec![-1.0]);
        assert_eq!(sig(DType::C64, le_bytes(&[3.0f32, 4.0], f32::to_le_bytes), 1).to_f32(), vec![5.0]);
    }
}
