//! `bert-finetune`: the tutorial, headless.
//!
//! `info` prints the device and the data; `train` fine-tunes, scores the out-of-domain set and
//! saves everything; `predict` classifies new sentences with a saved model; `fetch` downloads
//! a hub model; `bench` times training steps for the Rust/Python speed comparison. The
//! commands live in [`cli`].

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
