//! A function's stdout and stderr reach Riffle's log, line by line, with
//! the function's name. Alone in its test binary: the subscriber is global,
//! so no other test's callsites race with it.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{functions, handlers_dir, json, python};

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn a_functions_output_reaches_riffles_log_with_its_name() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let fns = functions(&format!(
        "[functions.raw]\ncommand = [{:?}, \"raw_runtime.py\"]\nworking_dir = {:?}\n",
        python(),
        handlers_dir().display().to_string()
    ));
    let function = fns.resolve("raw").unwrap();
    let answer = fns
        .invoke(&function, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let log = || String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let request_id = json(&answer.payload)["headers"]["Lambda-Runtime-Aws-Request-Id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer:?}\n{}", log()))
        .to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = log();
        let line = log
            .lines()
            .find(|l| l.contains(&format!("answering {request_id}")));
        if let Some(line) = line {
            assert!(line.contains("function=\"raw\""), "{line}");
            assert!(line.contains("stream=\"stdout\""), "{line}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not logged:\n{log}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
