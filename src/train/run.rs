//! Training in the background of a notebook kernel, so that stopping it loses nothing.
//!
//! evcxr answers Jupyter's stop button by killing the process that holds every variable, the
//! model included. A [`Run`] instead drives a [`Trainer`] on a thread of its own and returns
//! at once: the cell ends, later cells run while it trains, [`Run::progress`] shows where it
//! is, [`Run::stop`] ends it after the current batch and hands the trainer back, [`Run::wait`]
//! waits for the end. The loop itself is the caller's (the notebook's cell hands its own loop
//! over, calling the trainer's pieces), so what the reader sees is what runs.
//!
//! The thread never prints: evcxr would show its lines in whichever cell happens to be
//! running. It keeps them, with the losses read so far, for [`Run::progress`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{anyhow, Result};

use super::events::{Event, EventSink};
use super::{History, Trainer};
use crate::model::{BertForSequenceClassification, TaskModel};
use crate::runtime::display::clock;

/// Lines kept for [`Run::progress`]; older ones are dropped.
const KEPT_LINES: usize = 1000;

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default, Clone)]
struct State {
    lines: Vec<String>,
    /// Lines written in all, dropped ones included (so a follower knows what it missed).
    written: usize,
    /// The history as last published, with the current epoch's losses read so far appended.
    history: Option<History>,
    /// The epoch at the last publication, with (batches done, batches in it) while it was
    /// still training; `None` for the batches once the epoch was done.
    position: Option<(usize, Option<(usize, usize)>)>,
    finished: bool,
    error: Option<String>,
}

impl State {
    /// Appends `text`'s lines to the log, dropping the oldest beyond [`KEPT_LINES`].
    fn push_lines(&mut self, text: &str) {
        let before = self.lines.len();
        self.lines.extend(text.lines().map(str::to_string));
        self.written += self.lines.len() - before;
        let excess = self.lines.len().saturating_sub(KEPT_LINES);
        self.lines.drain(..excess);
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sink a [`Run`] gives its trainer: log lines and the history so far go to the shared
/// state [`Run::progress`] reads; a stop request comes back through
/// [`EventSink::stop_requested`].
struct RunSink {
    shared: Arc<Shared>,
}

impl EventSink for RunSink {
    fn on_event(&mut self, event: &Event<'_>, history: &History) {
        let mut state = self.shared.state();
        if let Some(line) = event.log_line() {
            state.push_lines(&line);
        }
        match event {
            Event::Progress {
                epoch,
                done,
                of,
                losses,
                ..
            } => {
                let mut snapshot = history.clone();
                snapshot.batch_losses.extend(*losses);
                state.history = Some(snapshot);
                state.position = Some((*epoch, Some((*done, *of))));
            }
            Event::EpochTrained { stats } | Event::Validated { stats } => {
                state.history = Some(history.clone());
                state.position = Some((stats.epoch, None));
            }
            _ => {}
        }
    }

    fn stop_requested(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }
}

/// A training run on a background thread, for every head the [`Trainer`] drives; see the
/// module documentation.
pub struct Run<M: TaskModel + Send + 'static = BertForSequenceClassification> {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<(Trainer<M>, Result<History>)>>,
    started: Instant,
}

impl<M: TaskModel + Send + 'static> Run<M> {
    /// Moves `trainer` to a new thread and runs `body` there with it; returns at once.
    ///
    /// `body` is the training loop: it calls the trainer's pieces (or [`Trainer::fit`]),
    /// checks [`Trainer::stop_requested`] between batches, and returns
    /// [`Trainer::finish`]'s history. While it runs, the trainer's events go to this run
    /// (for [`Run::progress`]); its own sink is given back when the body returns.
    pub fn start<F>(mut trainer: Trainer<M>, body: F) -> Run<M>
    where
        F: FnOnce(&mut Trainer<M>) -> Result<History> + Send + 'static,
    {
        let shared = Arc::new(Shared::default());
        let own_sink = trainer.set_sink(Box::new(RunSink {
            shared: Arc::clone(&shared),
        }));
        let state = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let result = body(&mut trainer);
            trainer.set_sink(own_sink);
            let mut state = state.state();
            match &result {
                Ok(history) => state.history = Some(history.clone()),
                Err(e) => state.error = Some(format!("{e:#}")),
            }
            state.finished = true;
            drop(state);
            (trainer, result)
        });
        Run {
            shared,
            thread: Some(thread),
            started: Instant::now(),
        }
    }

    /// [`Trainer::fit`] in the background: every epoch, validation and checkpoint.
    pub fn fit(trainer: Trainer<M>) -> Run<M> {
        Run::start(trainer, Trainer::fit)
    }

    /// Where the run is: its status, the last lines of its log and (displayed in a notebook)
    /// the loss of every batch so far.
    pub fn progress(&self) -> RunProgress {
        let state = self.shared.state().clone();
        let status = if let Some(e) = &state.error {
            format!("failed: {e}")
        } else if state.finished {
            "finished".to_string()
        } else if self.shared.stop.load(Ordering::Relaxed) {
            "stopping after the current batch".to_string()
        } else {
            match state.position {
                Some((epoch, Some((done, of)))) => {
                    format!("training: epoch {epoch}, {done} of {of} batches")
                }
                Some((epoch, None)) => format!("training: epoch {epoch} done"),
                None => "training: first epoch".to_string(),
            }
        };
        RunProgress {
            status,
            elapsed_seconds: self.started.elapsed().as_secs_f64(),
            lines: state.lines,
            history: state.history,
        }
    }

    /// True once the loop has returned (finished, stopped or failed).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Asks the loop to end after the current batch, waits for it, and hands back the trainer
    /// and the history up to there.
    pub fn stop(self) -> Result<(Trainer<M>, History)> {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.wait()
    }

    /// Waits for the loop to end, printing its log as it goes (so the waiting cell shows the
    /// epochs and batches live); hands back the trainer (its model trained) and the history.
    /// When the loop failed, the error says why; the weights are then those of the last
    /// checkpoint the loop wrote.
    pub fn wait(mut self) -> Result<(Trainer<M>, History)> {
        let thread = self
            .thread
            .take()
            .ok_or_else(|| anyhow!("this run was already waited for"))?;
        let mut printed = 0;
        loop {
            let done = thread.is_finished();
            printed = self.print_lines_after(printed);
            if done {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let (trainer, history) = thread
            .join()
            .map_err(|_| anyhow!("the training thread panicked (its message is above)"))?;
        Ok((trainer, history?))
    }
}

/// A run whose handle is dropped (its variable overwritten, say) stops after the current
/// batch instead of training on, unseen, next to a new one.
impl<M: TaskModel + Send + 'static> Drop for Run<M> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

impl<M: TaskModel + Send + 'static> Run<M> {
    /// Prints the log lines after the first `printed` ones; returns how many are printed now.
    fn print_lines_after(&self, printed: usize) -> usize {
        use std::io::Write;
        let state = self.shared.state();
        let first_kept = state.written - state.lines.len();
        let from = printed.max(first_kept) - first_kept;
        let mut out = std::io::stdout().lock();
        for line in &state.lines[from..] {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
        state.written
    }
}

/// A snapshot of a [`Run`]: text in a terminal, the loss plot in a notebook (drawn by the
/// figures module, `viz`, which sits above this one).
#[derive(Debug, Clone)]
pub struct RunProgress {
    pub status: String,
    pub elapsed_seconds: f64,
    /// The log so far (at most the last 1,000 lines).
    pub lines: Vec<String>,
    /// The losses so far, with the run's settings.
    pub history: Option<History>,
}

impl RunProgress {
    /// A one-line summary: status, elapsed time, the latest batch loss.
    pub fn headline(&self) -> String {
        let latest = self
            .history
            .as_ref()
            .and_then(|h| h.batch_losses.last())
            .map(|l| format!(", latest batch loss {l:.3}"))
            .unwrap_or_default();
        format!(
            "{} ({} elapsed{latest})",
            self.status,
            clock(self.elapsed_seconds)
        )
    }
}

impl fmt::Display for RunProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        let from = self.lines.len().saturating_sub(12);
        for line in &self.lines[from..] {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}
