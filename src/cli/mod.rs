//! The `bert-finetune` command line: flags mapped onto the library's configs, one function per
//! subcommand.
//!
//! `info` prints the device and the data; `train` fine-tunes, scores the out-of-domain set and
//! saves everything; `predict` classifies new sentences with a saved model; `bench` times
//! training steps for the Rust/Python speed comparison.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use bert_finetune::data::archive;
use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::tokenizer::Padding;
use bert_finetune::model::{entities, predict, pretrained, BertForTokenClassification};
use bert_finetune::optim::{AdamWConfig, LossScaleConfig};
use bert_finetune::runtime::display::thousands;
use bert_finetune::runtime::precision::Precision;
use bert_finetune::runtime::{device, settings};
use bert_finetune::train::TrainConfig;

/// `println!` on rank 0 alone (or outside data parallel). The set-up lines come before any
/// process group exists, so the rank is torchrun's `RANK` (see [`first_rank`]).
macro_rules! say {
    ($($arg:tt)*) => {
        if $crate::cli::first_rank() {
            println!($($arg)*);
        }
    };
}

/// False in a data-parallel rank other than 0, as torchrun (or `--nproc`) numbers them: such a
/// rank trains and stays silent, rank 0 speaks for the run.
pub fn first_rank() -> bool {
    std::env::var("RANK").map_or(true, |rank| rank.trim() == "0")
}

mod answering;
mod bench;
mod fit;
mod launch;
mod masked_lm;
mod own_data;
mod predict_file;
mod progress;
mod run_files;
mod scores;
mod tagging;
mod task_files;
mod train;

#[derive(Parser)]
#[command(
    version,
    about = "Fine-tune BERT-family encoders on your own text tasks, from Rust on libtorch",
    long_about = "Fine-tune BERT-family encoders on your own text tasks, from Rust on libtorch.\n\n\
        Text classification (any number of classes), regression and multi-label tagging, on \
        single texts or pairs, from CSV, TSV, JSON lines or Parquet files, the GLUE tasks, and \
        the classic CoLA tutorial (the default). Checkpoints are Hugging Face's own folders: \
        transformers loads what `train` saves, and `--model` takes a folder or a hub id.\n\n\
        Start with `bert-finetune train --help`; the README and docs/ say the rest."
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
    /// float32 tensors, TF32 matmuls on CUDA; fp32 on the CPU.
    Tf32,
    /// bf16 autocast for the forward pass; fp32 weights, gradients, optimizer state and loss
    /// (the CUDA default on compute capability 8.0 and later).
    Bf16,
    /// fp16 autocast with dynamic loss scaling (GradScaler's); fp32 weights, gradients and
    /// optimizer state (the CUDA default before compute capability 8.0: T4, V100, P100).
    Fp16,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Precision {
        match p {
            PrecisionArg::Fp32 => Precision::Fp32,
            PrecisionArg::Tf32 => Precision::Tf32,
            PrecisionArg::Bf16 => Precision::Bf16,
            PrecisionArg::Fp16 => Precision::Fp16,
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
    /// Numeric precision of training (default: fp32 on the CPU; on CUDA bf16 where the GPU
    /// has it, else fp16).
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

/// A data-parallel rank takes its own GPU, the one torchrun's `LOCAL_RANK` names.
fn own_gpu(device: tch::Device) -> tch::Device {
    match (
        device,
        std::env::var("LOCAL_RANK")
            .ok()
            .and_then(|v| v.parse().ok()),
    ) {
        (tch::Device::Cuda(_), Some(local_rank)) => tch::Device::Cuda(local_rank),
        (other, _) => other,
    }
}

impl Common {
    /// The checkpoint to use, fetched first when a revision is asked for.
    fn model(&self) -> Result<String> {
        let name = self
            .model
            .clone()
            .unwrap_or_else(|| bert_finetune::model::choose_model().name_or_dir);
        fetch(&name, self.revision.as_deref())
    }
    fn data(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(settings::cola_dir)
    }
    fn device(&self) -> tch::Device {
        if self.cpu {
            tch::Device::Cpu
        } else {
            own_gpu(device::choose())
        }
    }
    /// The device report for this run, naming `--cpu` when it kept a GPU machine on the CPU.
    fn device_report(&self) -> device::DeviceReport {
        let detected = device::detect();
        let report = if self.cpu {
            detected.choose_cpu("--cpu")
        } else {
            let device = own_gpu(detected.device);
            detected.using(device)
        };
        match self.precision {
            Some(chosen) => report.with_precision(chosen.into(), "--precision"),
            None => report,
        }
    }
    /// Says the device report and the checkpoint a run uses (fetched when needed), the first
    /// lines of every `train` on a user's files; returns the device and the checkpoint.
    fn announce(&self) -> Result<(tch::Device, String)> {
        let report = self.device_report();
        say!("{report}");
        let model_name = self.model()?;
        say!("Model: {model_name}");
        Ok((report.device, model_name))
    }
    fn precision(&self, device: tch::Device) -> Precision {
        self.precision
            .map_or_else(|| Precision::default_for(device), Precision::from)
    }
}

/// Training controls, as transformers' `TrainingArguments` names them.
#[derive(clap::Args)]
struct Controls {
    /// Batches whose gradients make one optimizer step (batch size × this sentences a step).
    #[arg(long, default_value_t = 1)]
    gradient_accumulation_steps: usize,
    /// Weights of the classes in the loss: "balanced" (scikit-learn's n / (k · count)) or
    /// one number per class, comma-separated, in class order.
    #[arg(long)]
    class_weights: Option<String>,
    /// Also evaluate every N optimizer steps (default: after each epoch only).
    #[arg(long, value_name = "N")]
    eval_steps: Option<usize>,
    /// Keep the best evaluation's weights on this metric and load them at the end: loss,
    /// accuracy, mcc, f1, macro_f1, mse, pearson, spearmanr, micro_f1, subset_accuracy.
    #[arg(long)]
    metric_for_best_model: Option<String>,
    /// Stop after this many evaluations without improvement (needs --metric-for-best-model).
    #[arg(long)]
    early_stopping_patience: Option<usize>,
    /// An improvement must exceed this to reset the patience.
    #[arg(long, default_value_t = 0.0)]
    early_stopping_threshold: f64,
    /// fp16: the first loss scale (GradScaler's init_scale).
    #[arg(long, default_value_t = 65536.0, value_name = "SCALE")]
    loss_scale: f64,
    /// fp16: clean steps in a row before the loss scale doubles (GradScaler's growth_interval).
    #[arg(long, default_value_t = 2000, value_name = "STEPS")]
    loss_scale_growth_interval: usize,
    /// Train this many optimizer steps, however many epochs that takes (transformers'
    /// max_steps; overrides --epochs).
    #[arg(long, value_name = "N")]
    max_steps: Option<usize>,
}

// Parsed once per process, so the size of `Train`'s flags costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
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
    /// Fine-tune on CoLA (the default), a GLUE task (--task) or your own files (--train-file);
    /// test, then save the model, its history and plots.
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
        #[arg(long, default_value = DEFAULT_RUN_FOLDER)]
        out: PathBuf,
        /// Continue the interrupted run whose output folder is DIR, from its newest
        /// checkpoint (give the same arguments as the first time).
        #[arg(long, value_name = "DIR")]
        resume: Option<PathBuf>,
        #[command(flatten)]
        controls: Controls,
        #[command(flatten)]
        own: own_data::OwnData,
        #[command(flatten)]
        mlm: masked_lm::MlmArgs,
        /// Data parallel on this machine: start N processes (Gloo), each training
        /// --batch-size rows per step (as `torchrun --nproc-per-node N --no-python` does).
        #[arg(long, value_name = "N")]
        nproc: Option<usize>,
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
    /// Predict with a saved model: the class and its probability, the value of a
    /// regression, or every label over 0.5 of a multi-label model.
    Predict {
        /// A folder written by `train`, or any BertForSequenceClassification checkpoint folder
        /// or hub id (default: the folder model_save, which `train` writes by default).
        #[arg(long, value_name = "DIR_OR_ID")]
        model: Option<String>,
        /// Branch, tag or commit of a hub model given by --model (default: main).
        #[arg(long, requires = "model")]
        revision: Option<String>,
        /// With a masked-LM model: how many tokens to list for each [MASK] (the fill-mask
        /// pipeline's top_k).
        #[arg(long, default_value_t = 5, value_name = "K")]
        top_k: usize,
        /// The texts; with --pairs, taken two by two as (first, second) pairs.
        #[arg(required_unless_present_any = ["file", "question"])]
        sentences: Vec<String>,
        /// With a question-answering model: the question to answer from --context.
        #[arg(long, requires = "context", conflicts_with_all = ["sentences", "file", "pairs"])]
        question: Option<String>,
        /// The text --question is answered from.
        #[arg(long, requires = "question")]
        context: Option<String>,
        /// The model reads pairs: the texts are given two by two.
        #[arg(long)]
        pairs: bool,
        /// Predict every row of this table (.csv, .tsv, .jsonl, .parquet) instead.
        #[arg(long, requires = "out", conflicts_with = "sentences")]
        file: Option<PathBuf>,
        /// Where --file's rows go, with the predictions added as columns (the input's kept).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The text column(s) of --file (default: those the model was trained on, from its
        /// summary.json, else sentence1,sentence2 or sentence or text).
        #[arg(long, value_delimiter = ',', alias = "text-column")]
        text_columns: Vec<String>,
    },
    /// Training throughput of Rust and PyTorch side by side (`make bench`): prints a table,
    /// writes <out>/bench.json and <out>/bench.png.
    Bench(bench::BenchArgs),
}

pub fn main() -> ExitCode {
    // `bert-finetune info | head -n 3`: a closed pipe ends the program quietly, as it ends
    // other Unix tools, instead of a panic at the next line printed (Rust ignores SIGPIPE).
    // SAFETY: restoring the default disposition of one signal at start-up, before any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before anything large is allocated: each step's big blocks are reused, not remapped.
    bert_finetune::runtime::allocator::keep_freed_memory();
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
        Command::Train { nproc: Some(n), .. }
            if n > 1 && std::env::var_os("WORLD_SIZE").is_none() =>
        {
            launch::run(n)
        }
        Command::Train {
            common,
            epochs,
            eps,
            weight_decay,
            warmup_steps,
            limit,
            out,
            resume,
            controls,
            own,
            mlm,
            nproc: _,
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
                gradient_accumulation_steps: controls.gradient_accumulation_steps,
                eval_steps: controls.eval_steps,
                metric_for_best_model: controls.metric_for_best_model,
                early_stopping_patience: controls.early_stopping_patience,
                early_stopping_threshold: controls.early_stopping_threshold,
                max_steps: controls.max_steps,
                loss_scale: LossScaleConfig {
                    init_scale: controls.loss_scale,
                    growth_interval: controls.loss_scale_growth_interval,
                    ..LossScaleConfig::default()
                },
                ..TrainConfig::default()
            };
            let out = resume.clone().unwrap_or(out);
            let weights = controls.class_weights.as_deref();
            let cola_preset = own
                .task
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case("cola"));
            let file = own.train_file.as_deref();
            if mlm.mlm {
                if weights.is_some() {
                    eprintln!(
                        "error: --class-weights: masked language modelling takes no class weights"
                    );
                    return ExitCode::FAILURE;
                }
                masked_lm::run(&common, &own, &mlm, config, limit, &out, resume.is_some())
            } else if file.is_some_and(task_files::is_squad_file) {
                if weights.is_some() {
                    eprintln!("error: --class-weights: question answering takes no class weights");
                    return ExitCode::FAILURE;
                }
                answering::run(&common, &own, config, limit, &out, resume.is_some())
            } else if file.is_some()
                && (task_files::is_conll_format(own.format.as_deref())
                    || file.is_some_and(task_files::is_tagging_file))
            {
                if weights.is_some() {
                    eprintln!(
                        "error: --class-weights: token classification takes no class weights"
                    );
                    return ExitCode::FAILURE;
                }
                tagging::run(&common, &own, config, limit, &out, resume.is_some())
            } else if own.train_file.is_some() || !cola_preset {
                own_data::run(
                    &common,
                    &own,
                    config,
                    weights,
                    limit,
                    &out,
                    resume.is_some(),
                )
            } else {
                train::run(&common, config, weights, limit, &out, resume.is_some())
            }
        }
        Command::Fetch { model, revision } => {
            let name = model.unwrap_or_else(|| {
                let choice = bert_finetune::model::choose_model();
                println!("{choice}");
                choice.name_or_dir
            });
            fetch(&name, revision.as_deref()).map(|dir| println!("{dir}"))
        }
        Command::Predict {
            model,
            revision,
            sentences,
            pairs,
            file,
            out,
            text_columns,
            question,
            context,
            top_k,
        } => {
            predict_model(model.as_deref(), revision.as_deref()).and_then(|dir| match (file, out) {
                _ if question.is_some() => answering::predict(
                    &dir,
                    question.as_deref().unwrap_or_default(),
                    context.as_deref().unwrap_or_default(),
                    384,
                ),
                (Some(file), Some(out)) => {
                    predict_file::refuse_the_input_as_output(&file, &out)?;
                    match pretrained::head(&dir)?.as_deref() {
                        Some("ForTokenClassification") => tagging::predict_file(&dir, &file, &out),
                        Some("ForQuestionAnswering") => answering::predict_file(&dir, &file, &out),
                        _ => predict_file::run(&dir, &file, &out, &text_columns),
                    }
                }
                _ if masked_lm::fills_masks(&dir, &sentences)? => {
                    if pairs {
                        anyhow::bail!("--pairs: a masked-LM model fills the masks of single texts");
                    }
                    masked_lm::fill_mask(&dir, &sentences, top_k)
                }
                _ => predict(&dir, &sentences, pairs),
            })
        }
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

/// The folder `train` writes when no `--out` is given, and `predict` reads when no `--model`
/// is given.
const DEFAULT_RUN_FOLDER: &str = "model_save";

/// The model `predict` uses: the one named (a folder, or a hub id fetched when missing), else
/// the default run folder, which is only ever a folder: missing, it is an error that says how
/// to make one, at once and without asking the hub.
fn predict_model(model: Option<&str>, revision: Option<&str>) -> Result<String> {
    if let Some(name) = model {
        return fetch(name, revision);
    }
    let dir = std::path::Path::new(DEFAULT_RUN_FOLDER);
    if !dir.is_dir() {
        anyhow::bail!(
            "no model to predict with: {DEFAULT_RUN_FOLDER}/ (the folder `train` writes by \
             default) does not exist in {}. Train one first (`bert-finetune train --out \
             {DEFAULT_RUN_FOLDER}`), or pass --model DIR_OR_ID (a folder written by `train`, or a \
             Hugging Face model id)",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "this folder".into())
        );
    }
    Ok(dir.display().to_string())
}

/// The folder of a checkpoint folder or hub id, downloading what the cache lacks.
fn fetch(name_or_dir: &str, revision: Option<&str>) -> Result<String> {
    let dir = bert_finetune::model::hub::resolve_revision(name_or_dir, revision)?;
    Ok(dir.display().to_string())
}

fn info(data: PathBuf) -> Result<()> {
    let report = device::detect();
    println!("{report} --precision chooses another.\n");
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

fn predict(model_dir: &str, sentences: &[String], pairs: bool) -> Result<()> {
    if pairs && !sentences.len().is_multiple_of(2) {
        anyhow::bail!(
            "--pairs: {} texts given; pairs come two by two (first second first second …)",
            sentences.len()
        );
    }
    let device = device::choose();
    let tokenizer = pretrained::load_tokenizer(model_dir)?;
    let head = pretrained::head(model_dir)?;
    if head.as_deref() == Some("ForQuestionAnswering") {
        anyhow::bail!("{model_dir} is a question-answering model: give --question and --context");
    }
    if head.as_deref() == Some("ForTokenClassification") {
        if pairs {
            anyhow::bail!("--pairs: a token classifier tags single texts");
        }
        let tagger = BertForTokenClassification::from_pretrained(model_dir, None, device)?;
        pretrained::check_vocabulary(&tokenizer, &tagger)?;
        for tagged in entities::predict_entities(&tagger, &tokenizer, sentences)? {
            println!("{tagged}\n");
        }
        return Ok(());
    }
    let model = pretrained::load_classifier(model_dir, device)?;
    pretrained::check_vocabulary(&tokenizer, &model)?;
    let predictions = if pairs {
        let (first, second): (Vec<String>, Vec<String>) = sentences
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .unzip();
        predict::predict(&model, &tokenizer, &first, Some(&second))?
    } else {
        predict::predict(&model, &tokenizer, sentences, None)?
    };
    println!("{predictions}");
    Ok(())
}
