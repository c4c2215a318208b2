//! Column plumbing shared by the typed tables: builders whose item fields come
//! from the schema, and zero-copy row views over decoded list columns.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeListArray, FixedSizeListBuilder, ListArray, ListBuilder,
    PrimitiveArray, PrimitiveBuilder, RecordBatch, StringArray,
};
use arrow::datatypes::{ArrowPrimitiveType, DataType, Schema};

use crate::error::{Error, Result};

pub(crate) fn fixed_builder<T: ArrowPrimitiveType>(
    schema: &Schema,
    column: &str,
    capacity: usize,
) -> FixedSizeListBuilder<PrimitiveBuilder<T>> {
    match schema.field_with_name(column).map(|f| f.data_type()) {
        Ok(DataType::FixedSizeList(item, n)) => {
            FixedSizeListBuilder::with_capacity(PrimitiveBuilder::<T>::new(), *n, capacity).with_field(item.clone())
        }
        other => panic!("schema column {column} is not a fixed-size list: {other:?}"),
    }
}

pub(crate) fn list_builder<T: ArrowPrimitiveType>(
    schema: &Schema,
    column: &str,
    capacity: usize,
) -> ListBuilder<PrimitiveBuilder<T>> {
    match schema.field_with_name(column).map(|f| f.data_type()) {
        Ok(DataType::List(item)) => {
            ListBuilder::with_capacity(PrimitiveBuilder::<T>::new(), capacity).with_field(item.clone())
        }
        other => panic!("schema column {column} is not a list: {other:?}"),
    }
}

/// Append one fixed-width row, or a null row (zero-filled underneath, as Arrow requires).
pub(crate) fn append_fixed<T: ArrowPrimitiveType>(
    builder: &mut FixedSizeListBuilder<PrimitiveBuilder<T>>,
    values: Option<&[T::Native]>,
    width: usize,
) {
    match values {
        Some(v) => {
            builder.values().append_slice(v);
            builder.append(true);
        }
        None => {
            builder.values().append_value_n(T::Native::default(), width);
            builder.append(false);
        }
    }
}

/// Check a file's Arrow schema against the expected one, column by column.
pub(crate) fn check_schema(path: &Path, expected: &Schema, found: &Schema) -> Result<()> {
    for field in expected.fields() {
        let Ok(got) = found.field_with_name(field.name()) else {
            return Err(Error::ColumnMismatch {
                path: path.to_path_buf(),
                column: field.name().clone(),
                expected: field.data_type().to_string(),
                found: "no such column".into(),
            });
        };
        if got.data_type() != field.data_type() || (got.is_nullable() && !field.is_nullable()) {
            return Err(Error::ColumnMismatch {
                path: path.to_path_buf(),
                column: field.name().clone(),
                expected: describe(field.data_type(), field.is_nullable()),
                found: describe(got.data_type(), got.is_nullable()),
            });
        }
    }
    Ok(())
}

fn describe(ty: &DataType, nullable: bool) -> String {
    format!("{ty}{}", if nullable { " (nullable)" } else { "" })
}

fn column<'a>(path: &Path, batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| Error::ColumnMismatch {
        path: path.to_path_buf(),
        column: name.into(),
        expected: "a column".into(),
        found: "no such column".into(),
    })
}

fn mismatch(path: &Path, name: &str, expected: &str, found: &DataType) -> Error {
    Error::ColumnMismatch {
        path: path.to_path_buf(),
        column: name.into(),
        expected: expected.into(),
        found: found.to_string(),
    }
}

pub(crate) fn strings(path: &Path, batch: &RecordBatch, name: &str) -> Result<StringArray> {
    let col = column(path, batch, name)?;
    col.as_string_opt::<i32>().cloned().ok_or_else(|| mismatch(path, name, "Utf8", col.data_type()))
}

pub(crate) fn bools(path: &Path, batch: &RecordBatch, name: &str) -> Result<BooleanArray> {
    let col = column(path, batch, name)?;
    col.as_boolean_opt().cloned().ok_or_else(|| mismatch(path, name, "Boolean", col.data_type()))
}

pub(crate) fn primitives<T: ArrowPrimitiveType>(
    path: &Path,
    batch: &RecordBatch,
    name: &str,
) -> Result<PrimitiveArray<T>> {
    let col = column(path, batch, name)?;
    col.as_primitive_opt::<T>().cloned().ok_or_else(|| mismatch(path, name, &T::DATA_TYPE.to_string(), col.data_type()))
}

/// Rows of a fixed-size list column as slices.
#[derive(Debug)]
pub(crate) struct FixedRows<T: ArrowPrimitiveType> {
    lists: FixedSizeListArray,
    values: PrimitiveArray<T>,
    width: usize,
}

// Manual impls: the derive would demand `T: Clone` of the marker type.
impl<T: ArrowPrimitiveType> Clone for FixedRows<T> {
    fn clone(&self) -> Self {
        FixedRows { lists: self.lists.clone(), values: self.values.clone(), width: self.width }
    }
}

impl<T: ArrowPrimitiveType> Clone for ListRows<T> {
    fn clone(&self) -> Self {
        ListRows { lists: self.lists.clone(), values: self.values.clone() }
    }
}

impl<T: ArrowPrimitiveType> FixedRows<T> {
    pub(crate) fn new(path: &Path, batch: &RecordBatch, name: &str) -> Result<Self> {
        let col = column(path, batch, name)?;
        let lists = col
            .as_fixed_size_list_opt()
            .cloned()
            .ok_or_else(|| mismatch(path, name, "FixedSizeList", col.data_type()))?;
        let values = lists
            .values()
            .as_primitive_opt::<T>()
            .cloned()
            .ok_or_else(|| mismatch(path, name, &T::DATA_TYPE.to_string(), lists.values().data_type()))?;
        let width = lists.value_length() as usize;
        Ok(FixedRows { lists, values, width })
    }

    pub(crate) fn row(&self, i: usize) -> Option<&[T::Native]> {
        if self.lists.is_null(i) {
            return None;
        }
        let start = self.lists.value_offset_at(i);
        Some(&self.values.values()[start..start + self.width])
    }
}

/// Rows of a variable-length list column as slices.
#[derive(Debug)]
pub(crate) struct ListRows<T: ArrowPrimitiveType> {
    lists: ListArray,
    values: PrimitiveArray<T>,
}

impl<T: ArrowPrimitiveType> ListRows<T> {
    pub(crate) fn new(path: &Path, batch: &RecordBatch, name: &str) -> Result<Self> {
        let col = column(path, batch, name)?;
        let lists = col.as_list_opt::<i32>().cloned().ok_or_else(|| mismatch(path, name, "List", col.data_type()))?;
        let values = lists
            .values()
            .as_primitive_opt::<T>()
            .cloned()
            .ok_or_else(|| mismatch(path, name, &T::DATA_TYPE.to_string(), lists.values().data_type()))?;
        Ok(ListRows { lists, values })
    }

    pub(crate) fn row(&self, i: usize) -> &[T::Native] {
        let offsets = self.lists.value_offsets();
        &self.values.values()[offsets[i] as usize..offsets[i + 1] as usize]
    }
}

pub(crate) fn finish_batch(schema: &Arc<Schema>, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(schema.clone(), columns).expect("typed builders produce exactly the schema's columns")
}
