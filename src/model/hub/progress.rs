//! Download progress: a bar in a terminal, plain lines elsewhere (a notebook streams stdout
//! lines live but cannot redraw a bar, and a log file wants lines too).
//!
//! The bar needs indicatif, which only the `cli` feature builds: a library built for a
//! notebook always prints lines.

use std::time::{Duration, Instant};

/// Receives the progress of each file download.
pub trait DownloadProgress {
    /// A download begins; `done` bytes are already on disk when it resumes.
    fn start(&mut self, file: &str, url: &str, total: u64, done: u64);
    /// `done` of the file's bytes are now on disk.
    fn advance(&mut self, done: u64);
    fn finish(&mut self);
    /// Another process (a notebook, a CLI, Python) holds the download lock of `file`: this
    /// one waits for it, then uses what it fetched.
    fn waiting(&mut self, file: &str, lock: &std::path::Path) {
        println!(
            "Waiting for another process downloading {file} (lock {})",
            lock.display()
        );
    }
}

/// Lines on stdout, about every tenth of the file and at most one every two seconds.
#[derive(Default)]
pub struct LineProgress {
    file: String,
    total: u64,
    started: Option<Instant>,
    last: Option<Instant>,
    next_share: u64,
}

impl DownloadProgress for LineProgress {
    fn start(&mut self, file: &str, url: &str, total: u64, done: u64) {
        let resumed = if done > 0 {
            format!(", resuming at {}", crate::runtime::display::size(done))
        } else {
            String::new()
        };
        println!(
            "Downloading {file} ({}{resumed}) from {url}",
            crate::runtime::display::size(total)
        );
        *self = LineProgress {
            file: file.to_string(),
            total,
            started: Some(Instant::now()),
            last: Some(Instant::now()),
            next_share: (done * 10 / total.max(1)) + 1,
        };
    }

    fn advance(&mut self, done: u64) {
        let share = done * 10 / self.total.max(1);
        let due = self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(2));
        if share >= self.next_share && share < 10 && due {
            println!(
                "  {}: {} of {} ({}%)",
                self.file,
                crate::runtime::display::size(done),
                crate::runtime::display::size(self.total),
                share * 10
            );
            self.next_share = share + 1;
            self.last = Some(Instant::now());
        }
    }

    fn finish(&mut self) {
        let seconds = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        println!(
            "  {}: {} in {seconds:.1} s",
            self.file,
            crate::runtime::display::size(self.total)
        );
    }
}

/// An indicatif bar on stderr, for a terminal.
#[cfg(feature = "cli")]
struct BarProgress {
    bar: Option<indicatif::ProgressBar>,
}

#[cfg(feature = "cli")]
impl DownloadProgress for BarProgress {
    fn start(&mut self, file: &str, _url: &str, total: u64, done: u64) {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:>24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(file.to_string());
        bar.set_position(done);
        self.bar = Some(bar);
    }

    fn advance(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

/// The display that suits where this process writes.
pub(super) fn for_this_process() -> Box<dyn DownloadProgress> {
    #[cfg(feature = "cli")]
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return Box::new(BarProgress { bar: None });
    }
    Box::new(LineProgress::default())
}
