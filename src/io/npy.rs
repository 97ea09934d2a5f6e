//! The `.npy` format (`np.save`): headers, the dtypes saecooc reads, C and Fortran order.

use anyhow::{bail, ensure, Context, Result};
use std::io::Read;

/// Element data of an array read from a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    F16(Vec<half::f16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    U8(Vec<u8>),
    Bool(Vec<bool>),
    /// Fixed-length byte strings (`|S{n}`), trailing NULs removed.
    Bytes(Vec<Vec<u8>>),
}

/// A C-ordered n-dimensional array read from a `.npy` file (Fortran-ordered files are
/// reordered on reading; the shape is the header's).
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

impl NpyArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements converted to `f32` (integers and doubles are cast).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            NpyData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            NpyData::F32(v) => v.clone(),
            NpyData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U32(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::Bool(v) => v.iter().map(|&x| x as u8 as f32).collect(),
            NpyData::Bytes(_) => Vec::new(),
        }
    }
}

/// An element type that can be written to `.npy`.
pub trait NpyElement: Copy {
    /// The numpy dtype string, e.g. `<f4`.
    const DESCR: &'static str;
    /// Appends the little-endian bytes of `values` to `out`.
    fn extend_le(values: &[Self], out: &mut Vec<u8>);
}

macro_rules! npy_element {
    ($t:ty, $descr:literal) => {
        impl NpyElement for $t {
            const DESCR: &'static str = $descr;
            fn extend_le(values: &[Self], out: &mut Vec<u8>) {
                out.reserve(values.len() * std::mem::size_of::<$t>());
                for v in values {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    };
}
npy_element!(f32, "<f4");
npy_element!(f64, "<f8");
npy_element!(i32, "<i4");
npy_element!(i64, "<i8");
npy_element!(u32, "<u4");
npy_element!(u64, "<u8");
npy_element!(u8, "|u1");

/// The `.npy` version 1.0 header for a C-ordered array of `descr` and `shape`.
pub fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_txt = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // magic (6) + version (2) + length (2) + dict + '\n' must be a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

pub(crate) fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    Some(rest)
}

/// The header of a `.npy` array: dtype string, shape, and whether the data is stored in
/// Fortran (column-major) order, as `np.save` writes a transposed array.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyHeader {
    pub descr: String,
    pub shape: Vec<usize>,
    pub fortran_order: bool,
}

/// Reorders the elements of an array stored in Fortran order (first axis fastest) into C
/// order (last axis fastest); `shape` is the array's shape, as the header states it.
pub(crate) fn fortran_to_c<T: Clone>(data: Vec<T>, shape: &[usize]) -> Vec<T> {
    if shape.iter().filter(|&&d| d > 1).count() < 2 {
        return data; // one axis at most: both orders are the same
    }
    let mut strides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    let mut out = Vec::with_capacity(data.len());
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0usize;
    for _ in 0..data.len() {
        out.push(data[offset].clone());
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            offset += strides[k];
            if index[k] < shape[k] {
                break;
            }
            offset -= strides[k] * shape[k];
            index[k] = 0;
        }
    }
    out
}

/// Length of the fixed prefix (magic, version, header length) and of the header dict, from
/// the first 12 bytes (or fewer, for version 1) of a `.npy` file.
pub(crate) fn npy_prefix(bytes: &[u8], what: &str) -> Result<(usize, usize)> {
    ensure!(
        bytes.len() >= 10 && &bytes[..6] == b"\x93NUMPY",
        "{what} is not a .npy array (bad magic)"
    );
    match bytes[6] {
        1 => Ok((10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize)),
        2 | 3 => {
            ensure!(bytes.len() >= 12, "{what}: truncated .npy header");
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
            Ok((12, len))
        }
        v => bail!("{what}: unsupported .npy version {v}"),
    }
}

/// Parses the header dict text (`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`).
pub(crate) fn parse_header_dict(header: &str, what: &str) -> Result<NpyHeader> {
    let descr = header_value(header, "descr")
        .and_then(|v| v.strip_prefix('\''))
        .and_then(|v| v.split('\'').next())
        .with_context(|| format!("{what}: .npy header has no 'descr'"))?;
    let fortran = header_value(header, "fortran_order")
        .with_context(|| format!("{what}: .npy header has no 'fortran_order'"))?;
    let fortran_order = if fortran.starts_with("False") {
        false
    } else if fortran.starts_with("True") {
        true
    } else {
        bail!("{what}: bad 'fortran_order' in the .npy header")
    };
    let shape_txt = header_value(header, "shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split(')').next())
        .with_context(|| format!("{what}: .npy header has no 'shape'"))?;
    let shape = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .with_context(|| format!("{what}: bad shape ({shape_txt})"))?;
    Ok(NpyHeader {
        descr: descr.to_string(),
        shape,
        fortran_order,
    })
}

/// Reads a `.npy` header from the start of a stream, leaving the stream at the data.
pub(crate) fn read_npy_header(reader: &mut impl Read, what: &str) -> Result<NpyHeader> {
    let mut prefix = [0u8; 10];
    reader
        .read_exact(&mut prefix)
        .with_context(|| format!("{what}: truncated .npy header"))?;
    let mut bytes = prefix.to_vec();
    if prefix[6] >= 2 {
        let mut more = [0u8; 2];
        reader
            .read_exact(&mut more)
            .with_context(|| format!("{what}: truncated .npy header"))?;
        bytes.extend_from_slice(&more);
    }
    let (_, len) = npy_prefix(&bytes, what)?;
    let mut dict = vec![0u8; len];
    reader
        .read_exact(&mut dict)
        .with_context(|| format!("{what}: truncated .npy header"))?;
    let text =
        std::str::from_utf8(&dict).with_context(|| format!("{what}: .npy header is not text"))?;
    parse_header_dict(text, what)
}

/// Parses the bytes of a `.npy` file; `what` names it in errors.
pub fn parse_npy(bytes: &[u8], what: &str) -> Result<NpyArray> {
    let (offset, header_len) = npy_prefix(bytes, what)?;
    ensure!(
        bytes.len() >= offset + header_len,
        "{what}: truncated .npy header"
    );
    let header = std::str::from_utf8(&bytes[offset..offset + header_len])
        .with_context(|| format!("{what}: .npy header is not text"))?;
    let NpyHeader {
        descr,
        shape,
        fortran_order,
    } = parse_header_dict(header, what)?;
    let descr = descr.as_str();
    let n: usize = shape.iter().product();
    let body = &bytes[offset + header_len..];
    let need = |size: usize| -> Result<&[u8]> {
        let len = n
            .checked_mul(size)
            .with_context(|| format!("{what}: shape {shape:?} too large"))?;
        ensure!(
            body.len() >= len,
            "{what}: truncated data ({} bytes, shape {shape:?} of {descr} needs {len})",
            body.len()
        );
        Ok(&body[..len])
    };
    macro_rules! decode {
        ($t:ty, $size:literal, $variant:ident) => {
            NpyData::$variant(
                need($size)?
                    .chunks_exact($size)
                    .map(|c| <$t>::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            )
        };
    }
    let data = match descr {
        "<f2" => NpyData::F16(
            need(2)?
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        "<f4" => decode!(f32, 4, F32),
        "<f8" => decode!(f64, 8, F64),
        "<i4" => decode!(i32, 4, I32),
        "<i8" => decode!(i64, 8, I64),
        "<u4" => decode!(u32, 4, U32),
        "<u8" => decode!(u64, 8, U64),
        "|u1" => NpyData::U8(need(1)?.to_vec()),
        "|b1" => NpyData::Bool(need(1)?.iter().map(|&b| b != 0).collect()),
        s if s.starts_with("|S") => {
            let width: usize = s[2..]
                .parse()
                .with_context(|| format!("{what}: bad string dtype {s}"))?;
            NpyData::Bytes(
                need(width.max(1))?
                    .chunks_exact(width.max(1))
                    .map(|c| {
                        let end = c.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                        c[..end].to_vec()
                    })
                    .collect(),
            )
        }
        other => bail!("{what}: unsupported dtype {other} (expected float, int or bool)"),
    };
    let data = if fortran_order {
        macro_rules! reorder {
            ($($variant:ident),*) => {
                match data {
                    $(NpyData::$variant(v) => NpyData::$variant(fortran_to_c(v, &shape)),)*
                }
            };
        }
        reorder!(F16, F32, F64, I32, I64, U32, U64, U8, Bool, Bytes)
    } else {
        data
    };
    Ok(NpyArray { shape, data })
}

/// Decodes little-endian floats of dtype `descr` into `out` (which sets the count).
pub(crate) fn decode_floats(descr: &str, bytes: &[u8], out: &mut [f32]) {
    match descr {
        "<f4" => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        "<f8" => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = f64::from_le_bytes(c.try_into().unwrap()) as f32;
            }
        }
        _ => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
    }
}
