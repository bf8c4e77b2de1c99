//! How results reach the user: text tables or JSON on stdout, progress and warnings on stderr.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use zenith_snapshot::progress::Progress;

/// `--output-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Settings every command receives.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    pub format: Format,
    pub quiet: bool,
    pub progress: bool,
}

impl Out {
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Print a value as pretty JSON on stdout.
    pub fn print_json<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(value)?);
        Ok(())
    }

    /// A note for humans on stderr (suppressed by `-q` and in JSON mode).
    pub fn note(&self, msg: impl AsRef<str>) {
        if !self.quiet && !self.json() {
            eprintln!("{}", msg.as_ref());
        }
    }

    pub fn progress(&self) -> Bar {
        let show = self.progress && !self.quiet && std::io::stderr().is_terminal();
        Bar::new(show)
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new(show: bool) -> Bar {
        let bar = ProgressBar::with_draw_target(
            None,
            if show {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        Bar { bar }
    }
}

impl Progress for Bar {
    fn start(&self, phase: &str, total: Option<u64>) {
        self.bar.reset();
        self.bar.set_prefix(phase.to_string());
        match total {
            Some(t) => {
                self.bar.set_length(t);
                self.bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {wide_msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
            }
            None => {
                self.bar.unset_length();
                self.bar.set_style(
                    ProgressStyle::with_template("{prefix:>12} {spinner} {bytes} {bytes_per_sec} {elapsed} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
            }
        }
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }
    fn inc(&self, n: u64) {
        self.bar.inc(n);
    }
    fn item(&self, name: &str) {
        self.bar.set_message(name.to_string());
    }
    fn warn(&self, msg: &str) {
        self.bar.suspend(|| eprintln!("warning: {msg}"));
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Bytes in binary units, e.g. `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

/// A timestamp in local time for tables.
pub fn local_time(t: jiff::Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A table with zenith's look.
pub fn table(header: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(header.to_vec());
    t
}
