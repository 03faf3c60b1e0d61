//! The console's option, as `riffle serve` takes it (flag, environment
//! variable, config-file key, default and help, declared once here; see
//! `riffle-config`).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use riffle_config::values::ListenOrOff;
use serde::{Deserialize, Serialize};

/// Where the console listens unless told otherwise: loopback, the port after
/// the API's 4567 (the metrics listener has no default port; the README
/// suggests 9464, Prometheus's registered exporter port).
pub const CONSOLE_LISTEN_DEFAULT: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4568));

/// `riffle serve`'s options of the web console.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct ConsoleOptions {
    /// Serve the web console at http://ADDR/, or off (the default address is skipped with a warning when taken)
    #[arg(
        long,
        env = "RIFFLE_CONSOLE_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:4568"
    )]
    pub console_listen: ListenOrOff,
}

impl ConsoleOptions {
    /// Whether the console listens where it does by default, so a taken
    /// port is a warning (another Riffle runs) rather than an error.
    pub fn is_default_listen(&self) -> bool {
        self.console_listen.0 == Some(CONSOLE_LISTEN_DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        console: ConsoleOptions,
    }

    #[test]
    fn the_console_listens_on_loopback_by_default_and_turns_off() {
        let default = Command::parse_from(["riffle"]).console;
        assert_eq!(default.console_listen.0, Some(CONSOLE_LISTEN_DEFAULT));
        assert!(default.is_default_listen());
        let off = Command::parse_from(["riffle", "--console-listen", "off"]).console;
        assert_eq!(off.console_listen.0, None);
        let any = Command::parse_from(["riffle", "--console-listen", "127.0.0.1:0"]).console;
        assert!(!any.is_default_listen());
    }
}
