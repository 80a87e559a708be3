//! `bert-finetune bench`: Rust and PyTorch training throughput on the same batches.
//!
//! For each padding the Rust side draws one epoch's batches with the training sampler and keeps
//! an evenly spread sample (`--warmup` untimed + `--steps` timed), writes them to
//! `<out>/bench/batches.json`, and `scripts/bench_pytorch.py` replays exactly those batches.
//! Each repeat runs every side once, so load from other processes hits all sides alike; the
//! report keeps the median of the repeats.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tch::Device;

use bert_finetune::data::split;
use bert_finetune::data::{padded_share, Batch, EncodedSet};
use bert_finetune::model::pretrained;
use bert_finetune::model::{BertConfig, BertForSequenceClassification};
use bert_finetune::optim::AdamWConfig;
use bert_finetune::runtime::{count_ops, device, OpCount};
use bert_finetune::train::{TrainConfig, Trainer};
use report::{spread, Report, Run};

use super::{Common, PadArg};

pub mod report;

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    common: Common,
    /// Timed steps per padding and side.
    #[arg(long, default_value_t = 12)]
    steps: usize,
    /// Untimed steps before the timed ones.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Runs of every side; the report keeps the median.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Paddings to time.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "fixed,longest,bucket"
    )]
    paddings: Vec<PadArg>,
    /// Sides to time: rust, pytorch (the tutorial's AdamW), pytorch-fused.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rust,pytorch,pytorch-fused"
    )]
    sides: Vec<String>,
    /// Intra-op threads for both sides (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Time every batch of one epoch instead of a sample (`scripts/gpu-check`).
    #[arg(long)]
    epoch: bool,
    /// A random-initialised model of this size instead of a checkpoint: `bert-base`.
    #[arg(long)]
    random_init: Option<String>,
    /// Python interpreter with torch and transformers (default: $VIRTUAL_ENV/bin/python).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Folder for bench.json, bench.png and the batches file.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Only rebuild bench.json and bench.png from a runs file (`<out>/bench/runs.jsonl`, one
    /// run per line, which every bench appends to as it goes).
    #[arg(long)]
    report_from: Option<PathBuf>,
}

/// Writes the table, `<out>/bench.json` and `<out>/bench.png` for the runs so far.
fn write_report(out: &std::path::Path, runs: &[Run], setup: serde_json::Value) -> Result<()> {
    let report = Report::new(runs, setup);
    println!("\n{report}");
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let json = out.join("bench.json");
    bert_finetune::runtime::atomic::write(&json, report.to_json()?.as_bytes())?;
    let written = report.chart()?.save(out, "bench")?;
    println!("\nwrote {}", json.display());
    for f in written {
        println!("wrote {}", f.display());
    }
    Ok(())
}

fn random_config(name: &str) -> Result<BertConfig> {
    let mut c = match name {
        "bert-base" => BertConfig::bert_base(),
        "tiny" => BertConfig::new(30522, 32, 1, 2, 64),
        other => bail!("unknown --random-init size {other:?} (bert-base, tiny)"),
    };
    c.set_num_labels(2);
    Ok(c)
}

/// The batches of one padding: the sample both sides time.
struct Plan {
    padding: PadArg,
    batches: Vec<Batch>,
    rows: Vec<Vec<Vec<i64>>>,
    labels: Vec<Vec<i64>>,
    padded_share: f64,
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(file) = &args.report_from {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let mut runs = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            runs.push(
                serde_json::from_str::<Run>(line)
                    .with_context(|| format!("{} line {}", file.display(), i + 1))?,
            );
        }
        let setup = serde_json::json!({ "from": file.display().to_string() });
        return write_report(&args.out, &runs, setup);
    }
    let common = &args.common;
    if args.steps == 0 || args.repeats == 0 {
        bail!("--steps and --repeats must be at least 1");
    }
    for side in &args.sides {
        if !report::SIDES.contains(&side.as_str()) {
            bail!("unknown side {side:?}: use rust, pytorch, pytorch-fused");
        }
    }
    let report = common.device_report();
    let device = report.device;
    println!("{report}");
    let precision = common.precision(device);
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    tch::set_num_threads(threads as i32);
    device::manual_seed(common.seed);
    precision.apply(device)?;
    let model_name = common.model()?;
    let tokenizer = pretrained::load_tokenizer(&model_name)?;

    let mut plans = Vec::new();
    let mut first_set: Option<(EncodedSet, EncodedSet)> = None;
    for &padding in &args.paddings {
        let (train_set, val_set) = split::train_validation(
            &tokenizer,
            common.data(),
            common.max_len,
            padding.into(),
            common.seed,
            None,
        )?;
        let order =
            train_set.batch_rows(common.batch_size, train_set.training_sampler(common.seed));
        let epoch: Vec<Batch> = order
            .iter()
            .map(|rows| train_set.batch_of(rows, Device::Cpu))
            .collect();
        let share = padded_share(&epoch);
        let picked = if args.epoch {
            let mut p: Vec<usize> = (0..args.warmup.min(epoch.len())).collect();
            p.extend(0..epoch.len());
            p
        } else {
            spread(epoch.len(), args.warmup + args.steps)
        };
        let batches: Vec<Batch> = picked
            .iter()
            .map(|&i| epoch[i].to_device(Device::Cpu))
            .collect();
        let classes = train_set
            .labels
            .classes()
            .context("the bench trains CoLA's classes")?;
        plans.push(Plan {
            padding,
            rows: picked
                .iter()
                .map(|&i| {
                    order[i]
                        .iter()
                        .map(|&r| train_set.ids.row(r).into_owned())
                        .collect()
                })
                .collect(),
            labels: picked
                .iter()
                .map(|&i| order[i].iter().map(|&r| classes[r]).collect())
                .collect(),
            batches,
            padded_share: share,
        });
        first_set.get_or_insert((train_set, val_set));
    }
    let Some((train_set, val_set)) = first_set else {
        bail!("--paddings: give at least one padding to time");
    };

    let bench_dir = args.out.join("bench");
    std::fs::create_dir_all(&bench_dir)
        .with_context(|| format!("cannot create {}", bench_dir.display()))?;
    let batches_file = bench_dir.join("batches.json");
    let config_json = match &args.random_init {
        Some(name) => {
            let c = random_config(name)?;
            serde_json::json!({
                "vocab_size": c.vocab_size, "hidden_size": c.hidden_size,
                "num_hidden_layers": c.num_hidden_layers,
                "num_attention_heads": c.num_attention_heads,
                "intermediate_size": c.intermediate_size,
            })
        }
        None => serde_json::Value::Null,
    };
    let spec = serde_json::json!({
        "model": model_name,
        "config": config_json,
        "pad_id": tokenizer.pad_id,
        "paddings": plans.iter().map(|p| serde_json::json!({
            "padding": p.padding.name(),
            "warmup": args.warmup.min(p.batches.len()),
            "padded_share": p.padded_share,
            "batches": p.rows.iter().zip(&p.labels).zip(&p.batches).map(|((ids, labels), b)| {
                serde_json::json!({"ids": ids, "labels": labels, "width": b.inputs.seq_len()})
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    bert_finetune::runtime::atomic::write(&batches_file, serde_json::to_string(&spec)?.as_bytes())?;

    let model = match &args.random_init {
        Some(name) => BertForSequenceClassification::new(&random_config(name)?, device)?,
        None => pretrained::load_model(&model_name, device)?,
    };
    pretrained::check_vocabulary(&tokenizer, &model)?;
    // The Trainer times its own step; its schedule spans every step the bench takes, so the
    // learning rate never reaches zero on the way.
    let total_steps = (args.warmup
        + args
            .steps
            .max(plans.iter().map(|p| p.batches.len()).max().unwrap_or(0)))
        * plans.len()
        * args.repeats
        + 1;
    let per_epoch = train_set.num_batches(common.batch_size);
    let config = TrainConfig {
        epochs: total_steps.div_ceil(per_epoch).max(1),
        batch_size: common.batch_size,
        seed: common.seed,
        optimizer: AdamWConfig {
            lr: common.lr,
            ..AdamWConfig::default()
        },
        precision,
        ..TrainConfig::default()
    };
    // Steps outside an epoch emit no events: the trainer's default sink stays silent here.
    let mut trainer = Trainer::new(model, config, train_set, val_set)?;
    let ops = count_optimizer_ops(&mut trainer, &plans, device)?;
    println!(
        "ATen operators per optimizer step (clip + AdamW, {} parameter tensors): {} dispatched, \
         {} including those dispatched inside them",
        trainer.optimizer().num_tensors(),
        ops.top_level,
        ops.all
    );
    // Where a step's time goes, in both layouts of the gradients (the Trainer keeps them per
    // tensor in a single process, flat under data parallel: see `optim::FusedAdamW`).
    let mut phases_json = Vec::new();
    if let Some(plan) = plans.last() {
        for flat in [false, true] {
            trainer.optimizer_mut().set_flat_gradients(flat)?;
            let phases = step_phases(&mut trainer, plan, device)?;
            let layout = if flat { "flat" } else { "per-tensor" };
            println!(
                "Rust step, {layout} gradients, {} padding, ms (median of {} steps): forward + \
                 loss {:.1}, backward {:.1}, clip {:.1}, AdamW {:.1}, total {:.1}",
                plan.padding.name(),
                plan.batches.len(),
                phases[0],
                phases[1],
                phases[2],
                phases[3],
                phases.iter().sum::<f64>()
            );
            phases_json.push(serde_json::json!({
                "gradients": layout, "padding": plan.padding.name(),
                "forward_ms": phases[0], "backward_ms": phases[1],
                "clip_ms": phases[2], "adamw_ms": phases[3],
            }));
        }
        trainer.optimizer_mut().set_flat_gradients(false)?;
    }
    let python = args.python.clone().unwrap_or_else(|| {
        std::env::var_os("VIRTUAL_ENV")
            .map(|v| PathBuf::from(v).join("bin/python"))
            .unwrap_or_else(|| PathBuf::from("python3"))
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/bench_pytorch.py");
    let script = if script.exists() {
        script
    } else {
        PathBuf::from("scripts/bench_pytorch.py")
    };

    let loads = std::fs::read_to_string("/proc/loadavg").ok();
    let runs_file = bench_dir.join("runs.jsonl");
    bert_finetune::runtime::atomic::write(&runs_file, b"")?;
    let mut runs: Vec<Run> = Vec::new();
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&runs_file)
        .with_context(|| format!("cannot open {}", runs_file.display()))?;
    for repeat in 1..=args.repeats {
        for side in &args.sides {
            if side == "rust" {
                for plan in &plans {
                    let run = time_rust(&mut trainer, plan, args.warmup, device)?;
                    println!(
                        "repeat {repeat}: {:<14}{:<9}{:>8.1} sentences/s",
                        side, run.padding, run.sentences_per_second
                    );
                    writeln!(log, "{}", serde_json::to_string(&run)?)?;
                    runs.push(run);
                }
            } else {
                let mut cmd = Command::new(&python);
                cmd.arg(&script)
                    .arg("--batches")
                    .arg(&batches_file)
                    .args(["--optimizer", side])
                    .args(["--threads", &threads.to_string()])
                    .args(["--precision", precision.name()])
                    .args(["--seed", &common.seed.to_string()])
                    .args(["--lr", &common.lr.to_string()])
                    .args([
                        "--device",
                        match device {
                            Device::Cuda(_) => "cuda",
                            _ => "cpu",
                        },
                    ]);
                if args.random_init.is_some() {
                    cmd.arg("--random-init");
                }
                let out = cmd
                    .output()
                    .with_context(|| format!("cannot run {}", python.display()))?;
                if !out.status.success() {
                    bail!(
                        "{} {} failed:\n{}",
                        python.display(),
                        script.display(),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                for line in String::from_utf8_lossy(&out.stdout).lines() {
                    let Ok(run) = serde_json::from_str::<Run>(line) else {
                        continue;
                    };
                    println!(
                        "repeat {repeat}: {:<14}{:<9}{:>8.1} sentences/s",
                        side, run.padding, run.sentences_per_second
                    );
                    writeln!(log, "{}", serde_json::to_string(&run)?)?;
                    runs.push(run);
                }
            }
        }
    }
    let timed_steps = if args.epoch {
        "epoch".to_string()
    } else {
        args.steps.to_string()
    };
    let setup = serde_json::json!({
        "model": args.random_init.clone().unwrap_or(model_name),
        "device": format!("{device:?}"),
        "precision": precision.name(),
        "threads": threads,
        "batch_size": common.batch_size,
        "max_len": common.max_len,
        "warmup_steps": args.warmup,
        "timed_steps": timed_steps,
        "repeats": args.repeats,
        "loadavg_before": loads.map(|l| l.trim().to_string()),
        "loadavg_after": std::fs::read_to_string("/proc/loadavg").ok().map(|l| l.trim().to_string()),
        "optimizer_tensors": trainer.optimizer().num_tensors(),
        "optimizer_ops_dispatched": ops.top_level,
        "optimizer_ops_all": ops.all,
        "step_phases": phases_json,
    });
    write_report(&args.out, &runs, setup)
}

/// Times `plan` on the Rust side with the Trainer's own step: warm-up steps, a device sync,
/// the timed steps, a sync.
fn time_rust(trainer: &mut Trainer, plan: &Plan, warmup: usize, device: Device) -> Result<Run> {
    let batches: Vec<Batch> = plan.batches.iter().map(|b| b.to_device(device)).collect();
    let warmup = warmup.min(batches.len());
    for b in &batches[..warmup] {
        let _ = trainer.step(b)?;
    }
    sync(device);
    let start = Instant::now();
    let mut seen = 0;
    let mut last = None;
    for b in &batches[warmup..] {
        last = Some(trainer.step(b)?);
        seen += b.len();
    }
    if let Some(loss) = last {
        let _ = loss.double_value(&[]);
    }
    sync(device);
    let seconds = start.elapsed().as_secs_f64();
    Ok(Run {
        side: "rust".into(),
        padding: plan.padding.name().into(),
        sentences_per_second: seen as f64 / seconds.max(1e-9),
        padded_share: plan.padded_share,
    })
}

/// Median milliseconds of a step's phases over `plan`'s batches: `zero_grad` + forward + loss,
/// backward, clipping, the AdamW update (each followed by a device sync).
fn step_phases(trainer: &mut Trainer, plan: &Plan, device: Device) -> Result<[f64; 4]> {
    let mut phases: [Vec<f64>; 4] = Default::default();
    for batch in &plan.batches {
        let batch = batch.to_device(device);
        let mut clock = Instant::now();
        let mut lap = |phase: usize, phases: &mut [Vec<f64>; 4]| {
            sync(device);
            phases[phase].push(clock.elapsed().as_secs_f64() * 1e3);
            clock = Instant::now();
        };
        trainer.optimizer_mut().zero_grad()?;
        let loss = trainer
            .model()
            .logits(&batch.inputs, true)
            .cross_entropy_for_logits(&batch.labels);
        lap(0, &mut phases);
        loss.f_backward()?;
        lap(1, &mut phases);
        let optimizer = trainer.optimizer_mut();
        let _norm = optimizer.clip_grad_norm()?;
        lap(2, &mut phases);
        optimizer.step()?;
        lap(3, &mut phases);
    }
    Ok(phases.map(|mut times| {
        times.sort_by(f64::total_cmp);
        times.get(times.len() / 2).copied().unwrap_or(f64::NAN)
    }))
}

/// Operators one optimizer step dispatches (after a backward pass on the first batch).
fn count_optimizer_ops(trainer: &mut Trainer, plans: &[Plan], device: Device) -> Result<OpCount> {
    let Some(batch) = plans.first().and_then(|p| p.batches.first()) else {
        bail!("no batches to time");
    };
    let batch = batch.to_device(device);
    trainer.optimizer_mut().zero_grad()?;
    let loss = trainer
        .model()
        .logits(&batch.inputs, true)
        .cross_entropy_for_logits(&batch.labels);
    loss.f_backward()?;
    let optimizer = trainer.optimizer_mut();
    let (result, ops) = count_ops(|| -> Result<()> {
        let _norm = optimizer.clip_grad_norm()?;
        optimizer.step()
    })?;
    result?;
    Ok(ops)
}
