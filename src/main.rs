//! `bert-finetune`: the tutorial, headless.
//!
//! `info` prints the device and the data; `train` fine-tunes, scores the out-of-domain set and
//! saves everything; `predict` classifies new sentences with a saved model; `bench` times
//! training steps for the Rust/Python speed comparison.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use bert_finetune::cola::{Cola, Split};
use bert_finetune::dataset::{self, VALIDATION_FRACTION};
use bert_finetune::display::thousands;
use bert_finetune::files::list_files;
use bert_finetune::model::BertConfig;
use bert_finetune::optim::AdamWConfig;
use bert_finetune::precision::Precision;
use bert_finetune::tokenize::Padding;
use bert_finetune::train::{self, checkpoint, Progress, TrainConfig};
use bert_finetune::{archive, device, eval, plot, predict, pretrained, settings};

#[path = "cli/bench.rs"]
mod bench;
#[path = "cli/run_files.rs"]
mod run_files;

use run_files::RunFiles;

#[derive(Parser)]
#[command(
    version,
    about = "Fine-tune BERT on CoLA (the classic tutorial, in Rust)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum PadArg {
    /// Pad every batch to --max-len (the tutorial's choice). The encoder skips padding, so this
    /// trains as longest does (up to float rounding), at about its speed.
    Fixed,
    /// Pad each batch to its longest sentence.
    Longest,
    /// Pad to the longest, and group sentences of similar length into batches (Hugging Face's
    /// group_by_length): the least padding, the fastest.
    Bucket,
}

impl From<PadArg> for Padding {
    fn from(p: PadArg) -> Padding {
        match p {
            PadArg::Fixed => Padding::Fixed,
            PadArg::Longest => Padding::Longest,
            PadArg::Bucket => Padding::Bucket,
        }
    }
}

impl PadArg {
    fn name(self) -> &'static str {
        match self {
            PadArg::Fixed => "fixed",
            PadArg::Longest => "longest",
            PadArg::Bucket => "bucket",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum PrecisionArg {
    /// float32 throughout (the CPU default).
    Fp32,
    /// float32 tensors, TF32 matmuls on CUDA (the CUDA default); fp32 on the CPU.
    Tf32,
    /// bf16 autocast for the forward pass; fp32 weights, gradients, optimizer state and loss.
    Bf16,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Precision {
        match p {
            PrecisionArg::Fp32 => Precision::Fp32,
            PrecisionArg::Tf32 => Precision::Tf32,
            PrecisionArg::Bf16 => Precision::Bf16,
        }
    }
}

#[derive(clap::Args)]
struct Common {
    /// Checkpoint folder or Hugging Face id, downloaded into the Hugging Face cache when
    /// missing (default: $BERT_FINETUNE_MODEL, else bert-base-uncased if cached, else the
    /// embedded all-MiniLM-L6-v2).
    #[arg(long)]
    model: Option<String>,
    /// Branch, tag or commit of a hub model (default: main).
    #[arg(long)]
    revision: Option<String>,
    /// The `cola_public` folder (default: $COLA_DIR or data/cola_public).
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 64)]
    max_len: usize,
    #[arg(long, value_enum, default_value_t = PadArg::Bucket)]
    padding: PadArg,
    /// Numeric precision of training (default: fp32 on the CPU, tf32 on CUDA).
    #[arg(long, value_enum)]
    precision: Option<PrecisionArg>,
    #[arg(long, default_value_t = 2e-5)]
    lr: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Use the CPU even when a GPU is present.
    #[arg(long)]
    cpu: bool,
}

impl Common {
    /// The checkpoint to use, fetched first when a revision is asked for.
    fn model(&self) -> Result<String> {
        let name = self
            .model
            .clone()
            .unwrap_or_else(|| settings::choose_model().name_or_dir);
        fetch(&name, self.revision.as_deref())
    }
    fn data(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(settings::cola_dir)
    }
    fn device(&self) -> tch::Device {
        if self.cpu {
            tch::Device::Cpu
        } else {
            device::choose()
        }
    }
    /// The device report for this run, naming `--cpu` when it kept a GPU machine on the CPU.
    fn device_report(&self) -> device::DeviceReport {
        let report = device::detect();
        if self.cpu {
            report.choose_cpu("--cpu")
        } else {
            report
        }
    }
    fn precision(&self, device: tch::Device) -> Precision {
        self.precision
            .map_or_else(|| Precision::default_for(device), Precision::from)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Print the device report and a summary of the CoLA data (the default).
    Info {
        /// The `cola_public` folder (default: $COLA_DIR or data/cola_public).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Unpack and check a `cola_public_1.1.zip` into a data folder.
    PrepareData {
        /// The downloaded archive.
        #[arg(long)]
        zip: PathBuf,
        /// Folder that receives `cola_public/`.
        #[arg(long, default_value = "data")]
        dest: PathBuf,
    },
    /// Fine-tune on CoLA, test on the out-of-domain set, save model, history and plots.
    Train {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 4)]
        epochs: usize,
        #[arg(long, default_value_t = 1e-8)]
        eps: f64,
        #[arg(long, default_value_t = 0.0)]
        weight_decay: f64,
        #[arg(long, default_value_t = 0)]
        warmup_steps: usize,
        /// Train on only this many sentences (a quick check).
        #[arg(long)]
        limit: Option<usize>,
        /// Output folder: checkpoint, history.json, summary.json, plots; per-epoch training
        /// checkpoints go into <out>/checkpoints/.
        #[arg(long, default_value = "model_save")]
        out: PathBuf,
        /// Continue the interrupted run whose output folder is DIR, from its newest
        /// checkpoint (give the same arguments as the first time).
        #[arg(long, value_name = "DIR")]
        resume: Option<PathBuf>,
    },
    /// Download a model from the Hugging Face hub into its cache (what `--model ID` does on
    /// first use) and print its folder.
    Fetch {
        /// A hub id such as bert-base-uncased (default: the model `train` would use).
        model: Option<String>,
        /// Branch, tag or commit (default: main).
        #[arg(long)]
        revision: Option<String>,
    },
    /// Classify sentences with a saved model.
    Predict {
        /// A folder written by `train`, or any BertForSequenceClassification checkpoint or hub id.
        #[arg(long, default_value = "model_save")]
        model: String,
        /// Branch, tag or commit of a hub model (default: main).
        #[arg(long)]
        revision: Option<String>,
        #[arg(required = true)]
        sentences: Vec<String>,
    },
    /// Training throughput of Rust and PyTorch side by side (`make bench`): prints a table,
    /// writes <out>/bench.json and <out>/bench.png.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    contain_panics();
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(code) => code,
        // The hook has already said what happened, in one line.
        Err(_) => ExitCode::FAILURE,
    }
}

/// A failure libtorch reports by panicking (tch's infallible calls, on a path no check
/// reached) becomes one line and exit code 1 instead of a page of C++ frames. With
/// `RUST_BACKTRACE` set, Rust's full report follows that line, for whoever debugs it.
fn contain_panics() {
    let full_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        let message = payload
            .trim_start_matches("called `Result::unwrap()` on an `Err` value: ")
            .trim_start_matches("Torch(\"");
        // libtorch appends its C++ frames after the first line (escaped in tch's Debug).
        let message = message.split('\n').next().unwrap_or(message);
        let message = message.split("\\n").next().unwrap_or(message);
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: {message} (an internal failure{at})");
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            full_report(info);
        }
    }));
}

fn run(cli: Cli) -> ExitCode {
    let result = match cli.command.unwrap_or(Command::Info { data: None }) {
        Command::Info { data } => info(data.unwrap_or_else(settings::cola_dir)),
        Command::PrepareData { zip, dest } => archive::extract(&zip, &dest).map(|dir| {
            println!("CoLA 1.1 is ready in {}", dir.display());
        }),
        Command::Train {
            common,
            epochs,
            eps,
            weight_decay,
            warmup_steps,
            limit,
            out,
            resume,
        } => {
            let config = TrainConfig {
                epochs,
                batch_size: common.batch_size,
                seed: common.seed,
                log_every: 40,
                optimizer: AdamWConfig {
                    lr: common.lr,
                    eps,
                    weight_decay,
                    warmup_steps,
                    ..AdamWConfig::default()
                },
                precision: common.precision(common.device()),
                ..TrainConfig::default()
            };
            let out = resume.clone().unwrap_or(out);
            run_training(&common, &config, limit, &out, resume.is_some())
        }
        Command::Fetch { model, revision } => {
            let name = model.unwrap_or_else(|| {
                let choice = settings::choose_model();
                println!("{choice}");
                choice.name_or_dir
            });
            fetch(&name, revision.as_deref()).map(|dir| println!("{dir}"))
        }
        Command::Predict {
            model,
            revision,
            sentences,
        } => fetch(&model, revision.as_deref()).and_then(|dir| predict(&dir, &sentences)),
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The folder of a checkpoint folder or hub id, downloading what the cache lacks.
fn fetch(name_or_dir: &str, revision: Option<&str>) -> Result<String> {
    let dir = bert_finetune::model::hub::resolve_revision(name_or_dir, revision)?;
    Ok(dir.display().to_string())
}

fn info(data: PathBuf) -> Result<()> {
    println!("{}\n", device::detect());
    println!("CoLA 1.1 in {}", data.display());
    for split in Split::ALL {
        let set = Cola::load_split(&data, split)?;
        println!(
            "  {:<28} {:>6} sentences. {}",
            split.relative_path(),
            thousands(set.len()),
            set.label_counts()
        );
    }
    let train = Cola::load_split(&data, Split::Train)?;
    println!(
        "\n5 random training rows (seed 42):\n{}",
        train.sample(5, 42)
    );
    Ok(())
}

/// Progress bar in a terminal, the tutorial's plain lines otherwise (logs, CI, pipes).
struct CliProgress {
    bar: Option<ProgressBar>,
    terminal: bool,
}

impl Progress for CliProgress {
    fn line(&mut self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => train::PrintProgress.line(text),
        }
    }

    fn batch_done(&mut self, done: usize, of: usize) {
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
    }
}

/// Everything that can be checked before the long work starts: arguments, the output
/// folder, the data files, the model folder. Returns the model's folder.
fn check_before_training(
    common: &Common,
    config: &TrainConfig,
    limit: Option<usize>,
    out: &Path,
    resume: bool,
) -> Result<String> {
    config.validate()?;
    if let Some(n) = limit {
        if n < 10 {
            bail!("--limit {n}: give at least 10 sentences, so the 90/10 split leaves one to validate on");
        }
    }
    if common.max_len < 2 {
        bail!(
            "--max-len {}: a sequence needs at least 2 positions ([CLS] and [SEP])",
            common.max_len
        );
    }
    check_output_folder(out)?;
    if resume && checkpoint::newest(out.join("checkpoints"))?.is_none() {
        bail!(
            "--resume {}: no complete checkpoint in {}",
            out.display(),
            out.join("checkpoints").display()
        );
    }
    let data = common.data();
    for split in [Split::Train, Split::OutOfDomainDev] {
        let file = data.join(split.relative_path());
        if !file.is_file() {
            bail!(
                "--data {}: {} is missing (expected the cola_public folder of CoLA 1.1)",
                data.display(),
                file.display()
            );
        }
    }
    // The training set's size, as the split will make it, for the warm-up check.
    let rows = Cola::load_split(&data, Split::Train)?.len();
    let train_rows = ((1.0 - VALIDATION_FRACTION) * rows as f64).floor() as usize;
    let train_rows = limit.map_or(train_rows, |n| n.min(train_rows));
    config.validate_steps(train_rows.div_ceil(config.batch_size))?;
    let model_dir = common.model()?;
    let config_file = Path::new(&model_dir).join("config.json");
    let model_config = BertConfig::from_file(&config_file)?;
    if common.max_len > model_config.max_position_embeddings as usize {
        bail!(
            "--max-len {}: the model has {} position embeddings ({})",
            common.max_len,
            model_config.max_position_embeddings,
            config_file.display()
        );
    }
    Ok(model_dir)
}

/// The output folder must be a folder we can write: created if missing, probed with a file.
fn check_output_folder(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out {}: this is a file, not a folder", out.display());
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("--out {}: cannot create the folder", out.display()))?;
    let probe = out.join(".write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("--out {}: the folder is not writable", out.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn run_training(
    common: &Common,
    config: &TrainConfig,
    limit: Option<usize>,
    out: &Path,
    resume: bool,
) -> Result<()> {
    let model_name = check_before_training(common, config, limit, out, resume)?;
    let report = common.device_report();
    let device = report.device;
    println!("{report}");
    println!("Model: {model_name}");
    println!("Precision: {}", config.precision);
    device::manual_seed(common.seed);
    let tokenizer = pretrained::load_tokenizer(&model_name)?;
    let padding = Padding::from(common.padding);
    let data = common.data();
    let (train_set, val_set) = dataset::train_validation(
        &tokenizer,
        &data,
        common.max_len,
        padding,
        common.seed,
        limit,
    )?;
    println!(
        "{} training samples, {} validation samples",
        thousands(train_set.len()),
        thousands(val_set.len())
    );
    let model = pretrained::load_model(&model_name, device)?;
    pretrained::check_vocabulary(&tokenizer, &model)?;
    let mut progress = CliProgress {
        bar: None,
        terminal: std::io::stdout().is_terminal(),
    };
    let checkpoints = train::Checkpoints {
        dir: out.join("checkpoints"),
        resume,
    };
    let history = train::train_with_checkpoints(
        &model,
        &train_set,
        &val_set,
        config,
        Some(&checkpoints),
        &mut progress,
    )?;

    let test_set = dataset::encode_split(
        &tokenizer,
        &data,
        Split::OutOfDomainDev,
        common.max_len,
        padding,
        None,
    )?;
    println!(
        "\nPredicting labels for {} test sentences...",
        thousands(test_set.len())
    );
    let scored = eval::evaluate(&model, &test_set, common.batch_size, config.precision)?;
    println!(
        "{}",
        Cola::load_split(&data, Split::OutOfDomainDev)?.label_counts()
    );
    println!("{scored}");

    let files = RunFiles::new(out);
    model.save_pretrained(out, Some(&tokenizer))?;
    bert_finetune::atomic_write(&files.history(), history.to_json()?.as_bytes())?;
    let summary = serde_json::json!({
        "model": model_name,
        "device": format!("{device:?}"),
        "train_size": train_set.len(),
        "test_size": test_set.len(),
        "test_mcc": scored.mcc(),
        "test_accuracy": scored.accuracy(),
        "test_mcc_per_batch": scored.per_batch_mcc(),
        "validation_accuracy": history.epochs.iter().map(|e| e.val_accuracy).collect::<Vec<_>>(),
        "training_seconds": history.total_seconds,
        "precision": config.precision,
        "padded_share": history.padded_share,
        "sentences_per_second": history.epochs.iter().map(|e| e.sentences_per_second).collect::<Vec<_>>(),
    });
    bert_finetune::atomic_write(
        &files.summary(),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    plot::save_history_plots(&history, out)?;
    plot::mcc_bars(&scored)?.save(out, "mcc")?;
    println!("\n{history}\n");
    println!("{}", list_files(out)?);
    Ok(())
}

fn predict(model_dir: &str, sentences: &[String]) -> Result<()> {
    let device = device::choose();
    let tokenizer = pretrained::load_tokenizer(model_dir)?;
    let model = pretrained::load_classifier(model_dir, device)?;
    pretrained::check_vocabulary(&tokenizer, &model)?;
    println!(
        "{}",
        predict::classify_sentences(&model, &tokenizer, sentences)?
    );
    Ok(())
}
