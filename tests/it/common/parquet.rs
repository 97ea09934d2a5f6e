//! Parquet files as the hub's dataset conversion has them: a nullable `text` column (and an
//! `id` column before it, if asked), zstd-compressed, `rows_per_group` rows per row group.

use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::sync::Arc;

/// `docs` as a parquet file with a `text` column; with `ids`, an `id` column (0, 1, …) first.
pub fn parquet_file(docs: &[String], rows_per_group: usize, ids: bool) -> Vec<u8> {
    let schema = if ids {
        "message schema { required int64 id; optional binary text (STRING); }"
    } else {
        "message schema { optional binary text (STRING); }"
    };
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut bytes = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut bytes, schema, Arc::new(properties)).unwrap();
    let mut first_id = 0i64;
    for chunk in docs.chunks(rows_per_group.max(1)) {
        let mut group = writer.next_row_group().unwrap();
        if ids {
            let ids: Vec<i64> = (first_id..).take(chunk.len()).collect();
            let mut column = group.next_column().unwrap().unwrap();
            column
                .typed::<Int64Type>()
                .write_batch(&ids, None, None)
                .unwrap();
            column.close().unwrap();
        }
        let texts: Vec<ByteArray> = chunk.iter().map(|d| ByteArray::from(d.as_str())).collect();
        let mut column = group.next_column().unwrap().unwrap();
        column
            .typed::<ByteArrayType>()
            .write_batch(&texts, Some(&vec![1; chunk.len()]), None)
            .unwrap();
        column.close().unwrap();
        group.close().unwrap();
        first_id += chunk.len() as i64;
    }
    writer.close().unwrap();
    bytes
}
