//! Host tensors: a typed, dense, row-major buffer with a static shape.

use crate::RuntimeError;
use brainlift_ir::{DType, Shape, TensorType};
use std::sync::Arc;

/// The storage of a [`Tensor`], one variant per element type. `Bool` is stored as bytes 0/1.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f64` elements.
    F64(Vec<f64>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// `bool` elements as 0/1 bytes.
    Bool(Vec<u8>),
}

/// A dense row-major tensor on the host: the values passed into and out of executables.
///
/// The storage is shared: cloning a tensor is O(1) (a reference count), and the first mutation
/// of a shared tensor copies it ([`Tensor::data_mut`]), so passing large inputs by value to an
/// executable costs nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    ty: TensorType,
    data: Arc<TensorData>,
}

impl Tensor {
    /// A tensor from its type and storage; fails when the length or element type disagree.
    pub fn new(ty: TensorType, data: TensorData) -> Result<Tensor, RuntimeError> {
        let (dt, len) = match &data {
            TensorData::F32(v) => (DType::F32, v.len()),
            TensorData::F64(v) => (DType::F64, v.len()),
            TensorData::I32(v) => (DType::I32, v.len()),
            TensorData::Bool(v) => (DType::Bool, v.len()),
        };
        if ty.shape.checked_numel().is_none() {
            return Err(RuntimeError::BadTensor(format!(
                "the element count of {ty} overflows"
            )));
        }
        if dt != ty.dtype || len != ty.numel() {
            return Err(RuntimeError::BadTensor(format!(
                "type {ty} needs {} {} values, got {len} {dt} values",
                ty.numel(),
                ty.dtype
            )));
        }
        Ok(Tensor {
            ty,
            data: Arc::new(data),
        })
    }

    /// An `f64` tensor from row-major values.
    pub fn from_f64(shape: impl Into<Shape>, values: Vec<f64>) -> Result<Tensor, RuntimeError> {
        Tensor::new(TensorType::new(DType::F64, shape), TensorData::F64(values))
    }

    /// An `f32` tensor from row-major values.
    pub fn from_f32(shape: impl Into<Shape>, values: Vec<f32>) -> Result<Tensor, RuntimeError> {
        Tensor::new(TensorType::new(DType::F32, shape), TensorData::F32(values))
    }

    /// A `bool` tensor from row-major values (stored as 0/1 bytes).
    pub fn from_bool(shape: impl Into<Shape>, values: &[bool]) -> Result<Tensor, RuntimeError> {
        Tensor::new(
            TensorType::new(DType::Bool, shape),
            TensorData::Bool(values.iter().map(|&x| x as u8).collect()),
        )
    }

    /// A scalar `f64`.
    pub fn scalar_f64(x: f64) -> Tensor {
        Tensor {
            ty: TensorType::scalar(DType::F64),
            data: Arc::new(TensorData::F64(vec![x])),
        }
    }

    /// A tensor of any type from `f64` values, each converted with [`DType::round`].
    pub fn from_f64_values(ty: TensorType, values: &[f64]) -> Result<Tensor, RuntimeError> {
        if ty.shape.checked_numel() != Some(values.len()) {
            return Err(RuntimeError::BadTensor(format!(
                "type {ty} needs {} values, got {}",
                ty.numel(),
                values.len()
            )));
        }
        let data = match ty.dtype {
            DType::F64 => TensorData::F64(values.to_vec()),
            DType::F32 => TensorData::F32(values.iter().map(|&x| x as f32).collect()),
            DType::I32 => TensorData::I32(values.iter().map(|&x| x as i32).collect()),
            DType::Bool => TensorData::Bool(values.iter().map(|&x| (x != 0.0) as u8).collect()),
        };
        Ok(Tensor {
            ty,
            data: Arc::new(data),
        })
    }

    /// Zeros of a type.
    pub fn zeros(ty: TensorType) -> Tensor {
        let n = ty.numel();
        let data = match ty.dtype {
            DType::F64 => TensorData::F64(vec![0.0; n]),
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
            DType::Bool => TensorData::Bool(vec![0; n]),
        };
        Tensor {
            ty,
            data: Arc::new(data),
        }
    }

    /// The tensor's type.
    pub fn ty(&self) -> &TensorType {
        &self.ty
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.ty.dtype
    }

    /// Axis sizes.
    pub fn shape(&self) -> &[usize] {
        self.ty.dims()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.ty.numel()
    }

    /// The storage.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// Mutable storage (the length and type cannot change).
    pub fn data_mut(&mut self) -> &mut TensorData {
        Arc::make_mut(&mut self.data)
    }

    /// All elements converted to `f64` (exact for every element type).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &*self.data {
            TensorData::F64(v) => v.clone(),
            TensorData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// The `f64` elements, if this is an `f64` tensor.
    pub fn as_f64(&self) -> Option<&[f64]> {
        match &*self.data {
            TensorData::F64(v) => Some(v),
            _ => None,
        }
    }

    /// Mutable `f64` elements, if this is an `f64` tensor.
    pub fn as_f64_mut(&mut self) -> Option<&mut [f64]> {
        match Arc::make_mut(&mut self.data) {
            TensorData::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The single element of a one-element tensor, as `f64`.
    pub fn item(&self) -> Option<f64> {
        if self.numel() == 1 {
            Some(self.to_f64_vec()[0])
        } else {
            None
        }
    }

    /// Same data viewed with another shape of equal size.
    pub fn reshaped(mut self, shape: impl Into<Shape>) -> Result<Tensor, RuntimeError> {
        let shape = shape.into();
        if shape.numel() != self.numel() {
            return Err(RuntimeError::BadTensor(format!(
                "cannot reshape {} to {shape}",
                self.ty
            )));
        }
        self.ty.shape = shape;
        Ok(self)
    }

    /// Converts to another element type (with [`DType::round`] semantics).
    pub fn cast(&self, dtype: DType) -> Tensor {
        let v = self.to_f64_vec();
        Tensor::from_f64_values(self.ty.with_dtype(dtype), &v).expect("same length")
    }
}
