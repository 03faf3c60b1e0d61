//! The CompressionFormat codecs: each round-trips, and what they write is
//! what standard tools and the formats' reference layouts read.

use std::io::Write as _;
use std::process::{Command, Stdio};

use riffle_firehose::compression::{
    CompressionFormat, SNAPPY_BLOCK_BYTES, SNAPPY_JAVA_MAGIC, decode,
};

/// Records as a producer sends them: JSON lines, with some repetition (so
/// they compress) and some noise (so they do not vanish), across several
/// Snappy blocks.
fn records(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut n = 0u64;
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(
            format!("{{\"seq\":{n},\"noise\":{state},\"pad\":\"aaaaaaaaaa\"}}\n").as_bytes(),
        );
        n += 1;
    }
    out.truncate(len);
    out
}

fn decompress(format: CompressionFormat, bytes: &[u8]) -> Vec<u8> {
    match format {
        CompressionFormat::Uncompressed => bytes.to_vec(),
        CompressionFormat::Gzip => {
            let mut out = Vec::new();
            std::io::copy(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
            out
        }
        CompressionFormat::Zip => {
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
            assert_eq!(archive.len(), 1, "one entry per object");
            let mut out = Vec::new();
            std::io::copy(&mut archive.by_index(0).unwrap(), &mut out).unwrap();
            out
        }
        CompressionFormat::Snappy => decode::snappy_java(bytes).unwrap(),
        CompressionFormat::HadoopSnappy => decode::hadoop_snappy(bytes).unwrap(),
    }
}

#[test]
fn every_format_round_trips_empty_small_and_multi_block_bodies() {
    let sizes = [
        0,
        1,
        100,
        SNAPPY_BLOCK_BYTES - 1,
        SNAPPY_BLOCK_BYTES,
        SNAPPY_BLOCK_BYTES + 1,
        5 * SNAPPY_BLOCK_BYTES + 77,
    ];
    for format in CompressionFormat::ALL {
        for size in sizes {
            let body = records(size);
            let compressed = format.compress(&body, "entry").unwrap();
            assert_eq!(
                decompress(format, &compressed),
                body,
                "{format:?} of {size} bytes"
            );
            if size > 10_000 && format != CompressionFormat::Uncompressed {
                assert!(
                    compressed.len() < body.len(),
                    "{format:?} shrinks repetitive records"
                );
            }
        }
    }
}

#[test]
fn formats_have_the_wire_names_extensions_and_encodings_the_service_uses() {
    let table = [
        ("UNCOMPRESSED", "", None),
        ("GZIP", ".gz", Some("gzip")),
        ("ZIP", ".zip", Some("zip")),
        ("Snappy", ".snappy", Some("snappy-java")),
        ("HADOOP_SNAPPY", ".snappy", Some("hadoop-snappy")),
    ];
    for (format, (wire, extension, encoding)) in CompressionFormat::ALL.into_iter().zip(table) {
        assert_eq!(format.as_str(), wire);
        assert_eq!(CompressionFormat::from_wire(wire), Some(format));
        assert_eq!(format.extension(), extension, "{wire}");
        assert_eq!(format.content_encoding(), encoding, "{wire}");
    }
    for not_a_format in ["SNAPPY", "gzip", "Gzip", "hadoop_snappy", ""] {
        assert_eq!(
            CompressionFormat::from_wire(not_a_format),
            None,
            "{not_a_format:?}"
        );
    }
    assert_eq!(
        CompressionFormat::default(),
        CompressionFormat::Uncompressed
    );
}

/// Runs `program args` with `input` on stdin and returns its stdout; a tool
/// that is missing or fails fails the test.
fn run(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed by this test: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn gzip_objects_are_read_by_gzip_and_by_pythons_gzip_module() {
    let body = records(3 * SNAPPY_BLOCK_BYTES);
    let compressed = CompressionFormat::Gzip.compress(&body, "unused").unwrap();
    assert_eq!(run("gzip", &["-dc"], &compressed), body);
    let script =
        "import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))";
    assert_eq!(run("python3", &["-c", script], &compressed), body);
}

#[test]
fn zip_objects_are_one_deflated_entry_that_pythons_zipfile_reads() {
    let body = records(2 * SNAPPY_BLOCK_BYTES + 5);
    let name = "0b5fa0f6-5b31-4b7c-9c56-3d1c1e7e8a3f";
    let compressed = CompressionFormat::Zip.compress(&body, name).unwrap();
    let script = "import io, sys, zipfile\n\
                  z = zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read()))\n\
                  assert z.testzip() is None\n\
                  [info] = z.infolist()\n\
                  assert info.compress_type == zipfile.ZIP_DEFLATED, info.compress_type\n\
                  sys.stderr.write(info.filename)\n\
                  sys.stdout.buffer.write(z.read(info))";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed by this test");
    child.stdin.take().unwrap().write_all(&compressed).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "zipfile refused it: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, body);
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        name,
        "the entry is named as asked"
    );
}

/// Raw Snappy block decoding through Python's standard library is not
/// possible, so the frames are checked against the layouts here and each
/// block against `snap`'s reference decoder.
#[test]
fn snappy_objects_are_snappy_java_streams_with_32_kib_blocks() {
    let body = records(2 * SNAPPY_BLOCK_BYTES + 10);
    let bytes = CompressionFormat::Snappy.compress(&body, "unused").unwrap();
    assert_eq!(bytes[..8], SNAPPY_JAVA_MAGIC);
    assert_eq!(
        bytes[8..16],
        [0, 0, 0, 1, 0, 0, 0, 1],
        "version 1, compatible with 1"
    );
    let mut at = 16;
    let mut lengths = Vec::new();
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let block = snap::raw::Decoder::new()
            .decompress_vec(&bytes[at + 4..at + 4 + len])
            .unwrap();
        lengths.push(block.len());
        at += 4 + len;
    }
    assert_eq!(lengths, [SNAPPY_BLOCK_BYTES, SNAPPY_BLOCK_BYTES, 10]);
    assert_eq!(
        CompressionFormat::Snappy
            .compress(b"", "unused")
            .unwrap()
            .len(),
        16,
        "header only"
    );
}

#[test]
fn hadoop_snappy_objects_are_hadoop_blocks_with_their_lengths() {
    let body = records(SNAPPY_BLOCK_BYTES + 3);
    let bytes = CompressionFormat::HadoopSnappy
        .compress(&body, "unused")
        .unwrap();
    let mut at = 0;
    let mut blocks = Vec::new();
    while at < bytes.len() {
        let plain_len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let len = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let block = snap::raw::Decoder::new()
            .decompress_vec(&bytes[at + 8..at + 8 + len])
            .unwrap();
        assert_eq!(
            block.len(),
            plain_len,
            "the header gives the block's uncompressed length"
        );
        blocks.push(block);
        at += 8 + len;
    }
    assert_eq!(blocks.concat(), body);
    assert_eq!(blocks.len(), 2);
    assert!(
        CompressionFormat::HadoopSnappy
            .compress(b"", "unused")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn snappy_decoders_refuse_what_the_formats_do_not_allow() {
    let hadoop = CompressionFormat::HadoopSnappy
        .compress(&records(100), "unused")
        .unwrap();
    assert!(
        decode::snappy_java(&hadoop).is_err(),
        "no snappy-java header"
    );
    let java = CompressionFormat::Snappy
        .compress(&records(100), "unused")
        .unwrap();
    assert!(
        decode::snappy_java(&java[..java.len() - 1]).is_err(),
        "truncated block"
    );
    assert!(
        decode::hadoop_snappy(&hadoop[..6]).is_err(),
        "truncated length"
    );
}
