//! The CompressionFormat codecs of S3 delivery and the file extension AWS adds for each.
//!
//! Firehose compresses the concatenated records of one object as a whole.
//! What each format writes, as the service writes it (checked against objects
//! real Firehose delivered, which the Java implementations named below
//! reproduce byte for byte for the Snappy variants):
//!
//! | CompressionFormat | extension | Content-Encoding | bytes |
//! |---|---|---|---|
//! | `UNCOMPRESSED`  | (none)    | (none)          | the records |
//! | `GZIP`          | `.gz`     | `gzip`          | one gzip member (RFC 1952) |
//! | `ZIP`           | `.zip`    | `zip`           | a zip archive of one deflated entry named by a UUID |
//! | `Snappy`        | `.snappy` | `snappy-java`   | snappy-java's stream format, see below |
//! | `HADOOP_SNAPPY` | `.snappy` | `hadoop-snappy` | Hadoop's block format, see below |
//!
//! "Amazon S3 Object Name Format" tables `.hsnappy` for Hadoop-Snappy, but the
//! service names those objects `.snappy`; we follow the service.
//!
//! `Snappy` is not the official Snappy framing format: it is the stream of
//! snappy-java's `SnappyOutputStream`: a 16-byte header (the magic
//! `0x82 "SNAPPY" 0x00`, then version 1 and compatible version 1 as
//! big-endian `u32`s), then for each 32 KiB block of input a big-endian `u32`
//! length and that many bytes of one raw Snappy block.
//!
//! `HADOOP_SNAPPY` is Hadoop's `BlockCompressorStream` layout as snappy-java's
//! `SnappyHadoopCompatibleOutputStream` writes it: for each 32 KiB block of
//! input, a big-endian `u32` uncompressed length, a big-endian `u32`
//! compressed length and the raw Snappy block. No header.

use std::io::{self, Write as _};

/// The formats of the model's `CompressionFormat` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionFormat {
    #[default]
    Uncompressed,
    Gzip,
    Zip,
    Snappy,
    HadoopSnappy,
}

/// Input bytes per Snappy block, as snappy-java cuts them (its
/// `DEFAULT_BLOCK_SIZE`, 32 KiB).
pub const SNAPPY_BLOCK_BYTES: usize = 32 * 1024;

/// Deflate level of GZIP and ZIP objects. Readers do not care; on record
/// data level 1 compresses within a few percent of level 6 (0.29 against 0.28
/// of the input on JSON lines) at about seven times the speed, and delivery
/// throughput is what a Firehose buffer waits on.
pub const DEFLATE_LEVEL: u32 = 1;

/// snappy-java's stream magic (`SnappyCodec.MAGIC_HEADER`).
pub const SNAPPY_JAVA_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// snappy-java's stream format version and oldest compatible version.
const SNAPPY_JAVA_VERSION: u32 = 1;

impl CompressionFormat {
    /// Every format, in the model's order.
    pub const ALL: [CompressionFormat; 5] = [
        CompressionFormat::Uncompressed,
        CompressionFormat::Gzip,
        CompressionFormat::Zip,
        CompressionFormat::Snappy,
        CompressionFormat::HadoopSnappy,
    ];

    /// The name on the wire, as the model spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CompressionFormat::Uncompressed => "UNCOMPRESSED",
            CompressionFormat::Gzip => "GZIP",
            CompressionFormat::Zip => "ZIP",
            CompressionFormat::Snappy => "Snappy",
            CompressionFormat::HadoopSnappy => "HADOOP_SNAPPY",
        }
    }

    /// Parses the wire name; case matters (`SNAPPY` is not a format).
    pub fn from_wire(name: &str) -> Option<CompressionFormat> {
        CompressionFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
    }

    /// The extension Firehose appends to the object name.
    pub fn extension(self) -> &'static str {
        match self {
            CompressionFormat::Uncompressed => "",
            CompressionFormat::Gzip => ".gz",
            CompressionFormat::Zip => ".zip",
            CompressionFormat::Snappy | CompressionFormat::HadoopSnappy => ".snappy",
        }
    }

    /// The `Content-Encoding` Firehose sets on the object, if any.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            CompressionFormat::Uncompressed => None,
            CompressionFormat::Gzip => Some("gzip"),
            CompressionFormat::Zip => Some("zip"),
            CompressionFormat::Snappy => Some("snappy-java"),
            CompressionFormat::HadoopSnappy => Some("hadoop-snappy"),
        }
    }

    /// Compresses one object's body. `entry_name` names the ZIP entry (AWS
    /// uses a UUID); the other formats ignore it.
    pub fn compress(self, body: &[u8], entry_name: &str) -> io::Result<Vec<u8>> {
        match self {
            CompressionFormat::Uncompressed => Ok(body.to_vec()),
            CompressionFormat::Gzip => gzip(body),
            CompressionFormat::Zip => zip(body, entry_name),
            CompressionFormat::Snappy => Ok(snappy_java(body)),
            CompressionFormat::HadoopSnappy => Ok(hadoop_snappy(body)),
        }
    }
}

fn gzip(body: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 3 + 64),
        flate2::Compression::new(DEFLATE_LEVEL),
    );
    encoder.write_all(body)?;
    encoder.finish()
}

fn zip(body: &[u8], entry_name: &str) -> io::Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(io::Cursor::new(Vec::with_capacity(body.len() / 3 + 256)));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(i64::from(DEFLATE_LEVEL)));
    writer
        .start_file(entry_name, options)
        .map_err(io::Error::other)?;
    writer.write_all(body)?;
    let cursor = writer.finish().map_err(io::Error::other)?;
    Ok(cursor.into_inner())
}

/// One raw Snappy block of `chunk`.
fn raw_block(encoder: &mut snap::raw::Encoder, chunk: &[u8], out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.resize(start + snap::raw::max_compress_len(chunk.len()), 0);
    // The output was sized by max_compress_len and a chunk is at most 32 KiB,
    // far below the encoder's input limit: compression cannot fail.
    let written = encoder
        .compress(chunk, &mut out[start..])
        .expect("sized output, small input");
    out.truncate(start + written);
    written
}

fn be32(n: usize) -> [u8; 4] {
    // Blocks are at most 32 KiB of input, so lengths fit in a u32.
    u32::try_from(n)
        .expect("block lengths are below 4 GiB")
        .to_be_bytes()
}

fn snappy_java(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 2 + 64);
    out.extend_from_slice(&SNAPPY_JAVA_MAGIC);
    out.extend_from_slice(&SNAPPY_JAVA_VERSION.to_be_bytes());
    out.extend_from_slice(&SNAPPY_JAVA_VERSION.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for chunk in body.chunks(SNAPPY_BLOCK_BYTES) {
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let written = raw_block(&mut encoder, chunk, &mut out);
        out[len_at..len_at + 4].copy_from_slice(&be32(written));
    }
    out
}

fn hadoop_snappy(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 2 + 64);
    let mut encoder = snap::raw::Encoder::new();
    for chunk in body.chunks(SNAPPY_BLOCK_BYTES) {
        out.extend_from_slice(&be32(chunk.len()));
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let written = raw_block(&mut encoder, chunk, &mut out);
        out[len_at..len_at + 4].copy_from_slice(&be32(written));
    }
    out
}

/// Decoders of the two Snappy framings, for tests and tools that read what
/// delivery wrote (nothing in the standard toolbox reads snappy-java's format).
pub mod decode {
    use std::io;

    fn invalid(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
    }

    fn be32(bytes: &[u8], at: usize) -> io::Result<usize> {
        let b = bytes
            .get(at..at + 4)
            .ok_or_else(|| invalid("truncated length"))?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn raw(bytes: &[u8], at: usize, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        let block = bytes
            .get(at..at + len)
            .ok_or_else(|| invalid("truncated block"))?;
        let plain = snap::raw::Decoder::new()
            .decompress_vec(block)
            .map_err(io::Error::other)?;
        out.extend_from_slice(&plain);
        Ok(())
    }

    /// Reads snappy-java's stream format (`CompressionFormat::Snappy`).
    pub fn snappy_java(bytes: &[u8]) -> io::Result<Vec<u8>> {
        if bytes.len() < 16 || bytes[..8] != super::SNAPPY_JAVA_MAGIC {
            return Err(invalid("not a snappy-java stream"));
        }
        let mut out = Vec::new();
        let mut at = 16;
        while at < bytes.len() {
            let len = be32(bytes, at)?;
            raw(bytes, at + 4, len, &mut out)?;
            at += 4 + len;
        }
        Ok(out)
    }

    /// Reads Hadoop's Snappy block format (`CompressionFormat::HadoopSnappy`).
    pub fn hadoop_snappy(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let block_len = be32(bytes, at)?;
            at += 4;
            let block_end = out.len() + block_len;
            while out.len() < block_end {
                let len = be32(bytes, at)?;
                raw(bytes, at + 4, len, &mut out)?;
                at += 4 + len;
            }
            if out.len() != block_end {
                return Err(invalid("block longer than its header says"));
            }
        }
        Ok(out)
    }
}
