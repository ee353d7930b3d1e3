//! Reading and writing tensors as numpy `.npy` files (with npyz).
//!
//! Reading accepts C-order arrays of these dtypes (either byte order):
//!
//! | numpy dtype | tensor dtype |
//! |---|---|
//! | `float64` (`f8`) | `f64` |
//! | `float32` (`f4`) | `f32` |
//! | `int32` (`i4`) | `i32` |
//! | `int64` (`i8`) | `i32`; a value outside the `i32` range is an error |
//! | `bool` (`b1`) | `bool` |
//! | `uint8` (`u1`) | `bool`; every value must be 0 or 1 (a mask), anything else is an error |
//!
//! Fortran-order files of rank >= 2 are rejected (save them with `np.ascontiguousarray`);
//! for rank 0 and 1 the two orders coincide and are accepted. Every other dtype (other integer
//! widths, float16, complex, strings, records, objects) is rejected with an error naming it.
//!
//! Writing produces a little-endian C-order file of the tensor's own dtype (`<f8`, `<f4`,
//! `<i4`, `|b1`), which numpy reads back unchanged.

use crate::{RuntimeError, Tensor, TensorData};
use brainlift_ir::{DType, TensorType};
use npyz::{NpyFile, Order, TypeChar, WriteOptions, WriterBuilder};
use std::path::Path;

fn io_err(path: &str, msg: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Io {
        path: path.to_string(),
        msg: msg.to_string(),
    }
}

/// Reads a `.npy` file into a tensor (see the module documentation for the accepted dtypes).
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor, RuntimeError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| io_err(&name, e))?;
    read_npy_named(&bytes, &name)
}

/// Reads a tensor from the bytes of a `.npy` file (errors name the source as `<bytes>`).
pub fn read_npy_bytes(bytes: &[u8]) -> Result<Tensor, RuntimeError> {
    read_npy_named(bytes, "<bytes>")
}

fn read_npy_named(bytes: &[u8], name: &str) -> Result<Tensor, RuntimeError> {
    let npy =
        NpyFile::new(bytes).map_err(|e| io_err(name, format!("not a valid .npy file: {e}")))?;
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| io_err(name, format!("shape {:?} is too large", npy.shape())))?;
    if npy.order() == Order::Fortran && shape.len() >= 2 {
        return Err(io_err(
            name,
            format!(
                "Fortran-order (column-major) arrays are not supported (shape {shape:?}); \
                 save a C-order copy with np.ascontiguousarray"
            ),
        ));
    }
    let dtype = npy.dtype();
    let unsupported = || {
        io_err(
            name,
            format!(
                "unsupported dtype {}: expected float64, float32, int32, int64, bool or uint8",
                dtype.descr()
            ),
        )
    };
    let ts = match &dtype {
        npyz::DType::Plain(ts) => ts.clone(),
        _ => return Err(unsupported()),
    };
    let read_err = |e: std::io::Error| io_err(name, format!("reading {} data: {e}", dtype.descr()));
    let (dt, data) = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 8) => (
            DType::F64,
            TensorData::F64(npy.into_vec::<f64>().map_err(read_err)?),
        ),
        (TypeChar::Float, 4) => (
            DType::F32,
            TensorData::F32(npy.into_vec::<f32>().map_err(read_err)?),
        ),
        (TypeChar::Int, 4) => (
            DType::I32,
            TensorData::I32(npy.into_vec::<i32>().map_err(read_err)?),
        ),
        (TypeChar::Int, 8) => {
            let v = npy.into_vec::<i64>().map_err(read_err)?;
            let mut out = Vec::with_capacity(v.len());
            for (i, x) in v.into_iter().enumerate() {
                out.push(i32::try_from(x).map_err(|_| {
                    io_err(
                        name,
                        format!("int64 value {x} at flat index {i} does not fit in i32"),
                    )
                })?);
            }
            (DType::I32, TensorData::I32(out))
        }
        (TypeChar::Bool, 1) => {
            let v = npy.into_vec::<bool>().map_err(read_err)?;
            (
                DType::Bool,
                TensorData::Bool(v.into_iter().map(u8::from).collect()),
            )
        }
        (TypeChar::Uint, 1) => {
            let v = npy.into_vec::<u8>().map_err(read_err)?;
            if let Some((i, x)) = v.iter().enumerate().find(|&(_, &x)| x > 1) {
                return Err(io_err(
                    name,
                    format!(
                        "uint8 is read as a bool mask, but the value at flat index {i} is {x} \
                         (save integer data as int32)"
                    ),
                ));
            }
            (DType::Bool, TensorData::Bool(v))
        }
        _ => return Err(unsupported()),
    };
    Tensor::new(TensorType::new(dt, shape), data).map_err(|e| io_err(name, e))
}

/// Writes a tensor as a `.npy` file (C order, little endian, the tensor's own dtype).
pub fn write_npy(path: impl AsRef<Path>, t: &Tensor) -> Result<(), RuntimeError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = write_npy_bytes(t)?;
    std::fs::write(path, bytes).map_err(|e| io_err(&name, e))
}

/// The bytes of a `.npy` file holding `t`.
pub fn write_npy_bytes(t: &Tensor) -> Result<Vec<u8>, RuntimeError> {
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    let mut buf = Vec::new();
    let res = match t.data() {
        TensorData::F64(v) => write_slice(&mut buf, &shape, v.iter().copied()),
        TensorData::F32(v) => write_slice(&mut buf, &shape, v.iter().copied()),
        TensorData::I32(v) => write_slice(&mut buf, &shape, v.iter().copied()),
        TensorData::Bool(v) => write_slice(&mut buf, &shape, v.iter().map(|&b| b != 0)),
    };
    res.map_err(|e| io_err("<bytes>", format!("writing {}: {e}", t.ty())))?;
    Ok(buf)
}

fn write_slice<T: npyz::AutoSerialize>(
    buf: &mut Vec<u8>,
    shape: &[u64],
    items: impl IntoIterator<Item = T>,
) -> std::io::Result<()> {
    let mut w = WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(buf)
        .begin_nd()?;
    w.extend(items)?;
    w.finish()
}
