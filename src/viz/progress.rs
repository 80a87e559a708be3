//! How a background training run shows in a notebook: its status as the title of the loss
//! chart so far, the latest log lines as text.

use crate::runtime::display::Rich;
use crate::train::RunProgress;

/// Batches averaged by the dark line of the progress chart.
const WINDOW: usize = 20;

impl Rich for RunProgress {
    fn png(&self) -> Option<Vec<u8>> {
        self.chart().map(|f| f.png)
    }
    fn svg(&self) -> Option<String> {
        self.chart().map(|f| f.svg)
    }

    /// Draws the chart once for both images (the default would draw it once per form).
    fn mime_bundle(&self) -> Vec<(&'static str, String)> {
        let mut bundle = vec![("text/plain", self.to_string())];
        if let Some(figure) = self.chart() {
            bundle.extend(figure.mime_bundle().into_iter().skip(1));
        }
        bundle
    }
}

impl RunProgress {
    /// The loss of every batch read so far, titled with the status; none before the first
    /// losses are read (the text form says where the run is).
    fn chart(&self) -> Option<super::Figure> {
        let history = self.history.as_ref()?;
        if history.batch_losses.is_empty() {
            return None;
        }
        super::batch_losses(&history.batch_losses, WINDOW, &self.headline()).ok()
    }
}

crate::impl_evcxr_display!(RunProgress);
