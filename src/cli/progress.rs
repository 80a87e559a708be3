//! The CLI's event sink: the tutorial's log lines, and a progress bar over each epoch's
//! batches when stdout is a terminal (plain lines for logs, CI and pipes).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use bert_finetune::train::{Event, EventSink, History, PrintLines};

pub struct BarsAndLines {
    bar: Option<ProgressBar>,
    terminal: bool,
}

impl BarsAndLines {
    pub fn new() -> Self {
        BarsAndLines {
            bar: None,
            terminal: std::io::stdout().is_terminal(),
        }
    }
}

impl EventSink for BarsAndLines {
    fn on_event(&mut self, event: &Event<'_>, history: &History) {
        if let Event::BatchDone { done, of, .. } = *event {
            if !self.terminal {
                return;
            }
            let bar = self.bar.get_or_insert_with(|| {
                let bar = ProgressBar::new(of as u64);
                if let Ok(style) = ProgressStyle::with_template(
                    "  {bar:40.cyan/blue} {pos}/{len} batches  {elapsed_precise}  ETA {eta}",
                ) {
                    bar.set_style(style);
                }
                bar
            });
            bar.set_position(done as u64);
            if done == of {
                bar.finish_and_clear();
                self.bar = None;
            }
            return;
        }
        match (&self.bar, event.log_line()) {
            (Some(bar), Some(line)) => bar.println(line),
            (None, Some(_)) => PrintLines.on_event(event, history),
            (_, None) => {}
        }
    }
}
