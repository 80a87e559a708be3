//! Nothing lost: the CLI killed with SIGKILL mid-epoch and inside a checkpoint write, then
//! resumed, ends exactly where an uninterrupted run ends; a run that fails late leaves the
//! model already in `--out` untouched; bad arguments are refused before any work.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_bert-finetune");

/// A small but real run: MiniLM, 96 CoLA sentences, three epochs.
fn args(out: &Path) -> Vec<String> {
    [
        "train",
        "--cpu",
        "--limit",
        "96",
        "--batch-size",
        "16",
        "--epochs",
        "3",
        "--max-len",
        "32",
        "--padding",
        "longest",
        "--seed",
        "7",
        "--lr",
        "5e-5",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([path_str(out)])
    .collect()
}

fn run(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the CLI starts")
}

fn spawn(args: &[String], env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().expect("the CLI starts")
}

/// Reads the child's output until a line contains `marker`.
fn wait_for_line(child: &mut Child, marker: &str) -> Vec<String> {
    let stdout = child.stdout.take().expect("piped");
    let mut reader = BufReader::new(stdout);
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "the run ended before {marker:?}:\n{}", seen.join(""));
        let hit = line.contains(marker);
        seen.push(line);
        if hit {
            child.stdout = Some(reader.into_inner());
            return seen;
        }
    }
}

fn history(out: &Path) -> serde_json::Value {
    history_without_times(out)
}

fn checkpoints(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out.join("checkpoints"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn assert_same_result(a: &Path, b: &Path) {
    assert_eq!(history(a), history(b), "histories differ");
    let wa = read_tensors(&a.join("model.safetensors"));
    let wb = read_tensors(&b.join("model.safetensors"));
    assert_eq!(wa.len(), wb.len());
    for (name, t) in &wa {
        assert!(t.equal(&wb[name]), "{name} differs after resuming");
    }
    let sa: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("summary.json")).unwrap()).unwrap();
    let sb: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("summary.json")).unwrap()).unwrap();
    assert_eq!(sa["test_mcc"], sb["test_mcc"]);
}

/// Runs `args` (training into `out`) and SIGKILLs it while it writes its epoch-2 checkpoint:
/// every checkpoint write pauses 5 s between the weights and the optimizer state, and the
/// kill lands within half a second of the weights appearing.
fn kill_while_writing_epoch_2(args: &[String], out: &Path) {
    let mut child = spawn(args, &[("BERT_FINETUNE_CHECKPOINT_PAUSE_MS", "5000")]);
    let partial = out.join("checkpoints/.epoch-2.partial/model.safetensors");
    let start = Instant::now();
    while !partial.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no checkpoint write seen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn killed_runs_resume_to_the_uninterrupted_result() {
    let dir = tmp();
    let reference = dir.path().join("uninterrupted");
    let stdout = succeeded(&run(&args(&reference), &[]));
    assert!(stdout.contains("Checkpoint:"), "{stdout}");
    // Only the newest checkpoint is kept.
    assert_eq!(checkpoints(&reference), ["epoch-3"]);

    // 1. SIGKILL in the middle of epoch 2: epoch 1's checkpoint survives, at most one
    //    epoch is lost, and the resumed run ends exactly where the reference ended.
    let killed = dir.path().join("killed-mid-epoch");
    let mut child = spawn(&args(&killed), &[]);
    wait_for_line(&mut child, "Epoch 2 / 3");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(checkpoints(&killed), ["epoch-1"]);
    let mut resume = args(&killed);
    resume.extend(["--resume".to_string(), path_str(&killed)]);
    let stdout = succeeded(&run(&resume, &[]));
    assert!(stdout.contains("Resuming after epoch 1 of 3"), "{stdout}");
    assert_same_result(&reference, &killed);

    // 2. SIGKILL while the epoch-2 checkpoint is being written: the half-written folder is
    //    ignored, epoch 1's is still complete, and resuming again gives the same result.
    let torn = dir.path().join("killed-in-checkpoint");
    kill_while_writing_epoch_2(&args(&torn), &torn);
    assert!(checkpoints(&torn).contains(&".epoch-2.partial".to_string()));
    assert!(checkpoints(&torn).contains(&"epoch-1".to_string()));
    let mut resume = args(&torn);
    resume.extend(["--resume".to_string(), path_str(&torn)]);
    let stdout = succeeded(&run(&resume, &[]));
    assert!(stdout.contains("Resuming after epoch 1 of 3"), "{stdout}");
    assert_same_result(&reference, &torn);
    assert_eq!(checkpoints(&torn), ["epoch-3"]);
}

/// Trains one epoch into `out`; returns the arguments used and the saved weights' bytes.
fn one_epoch_model(out: &Path) -> (Vec<String>, Vec<u8>) {
    let mut quick = args(out);
    if let Some(i) = quick.iter().position(|a| a == "--epochs") {
        quick[i + 1] = "1".into();
    }
    succeeded(&run(&quick, &[]));
    let weights = std::fs::read(out.join("model.safetensors")).unwrap();
    (quick, weights)
}

#[test]
fn a_run_that_fails_late_leaves_the_existing_model_untouched() {
    let dir = tmp();
    let out = dir.path().join("out");
    let (mut quick, before) = one_epoch_model(&out);

    // The test file is damaged at line 300: found only after training, when it is read.
    let data = dir.path().join("cola_public");
    for split in bert_finetune::data::cola::Split::ALL {
        let to = data.join(split.relative_path());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(cola_file(split), &to).unwrap();
    }
    let test_file = data.join(bert_finetune::data::cola::Split::OutOfDomainDev.relative_path());
    let text = std::fs::read_to_string(&test_file).unwrap();
    let broken: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 299 {
                l.replacen("\t1\t", "\t7\t", 1)
                    .replacen("\t0\t", "\t7\t", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&test_file, broken.join("\n")).unwrap();
    quick.extend(["--data".to_string(), path_str(&data)]);
    let failed = run(&quick, &[]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(
        stderr.contains("out_of_domain_dev.tsv") && stderr.contains("line 300"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        before
    );
}

/// Runs `train` with one argument changed and returns its error, checking it came fast.
fn refused(change: &[&str]) -> String {
    let dir = tmp();
    let mut a = args(&dir.path().join("out"));
    for pair in change.chunks(2) {
        match a.iter().position(|x| x == pair[0]) {
            Some(i) => a[i + 1] = pair[1].to_string(),
            None => a.extend(pair.iter().map(|s| s.to_string())),
        }
    }
    let start = Instant::now();
    let out = run(&a, &[]);
    let seconds = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{change:?} was accepted");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        seconds < 5.0,
        "{change:?} took {seconds:.1} s to be refused"
    );
    stderr
}

#[test]
fn arguments_are_checked_before_any_work() {
    for (change, expect) in [
        (&["--batch-size", "0"][..], "--batch-size 0"),
        (&["--epochs", "0"][..], "--epochs 0"),
        (&["--lr", "0"][..], "--lr 0"),
        (&["--lr", "-1"][..], "-1"),
        (&["--lr", "NaN"][..], "--lr NaN"),
        (&["--lr", "inf"][..], "--lr inf"),
        (&["--eps", "0"][..], "--eps 0"),
        (&["--max-len", "1"][..], "--max-len 1"),
        (&["--max-len", "513"][..], "position embeddings"),
        (&["--limit", "5"][..], "--limit 5"),
        (&["--warmup-steps", "1000"][..], "--warmup-steps 1000"),
        (&["--data", "/nonexistent/cola"][..], "in_domain_train.tsv"),
        (&["--model", "/nonexistent/model"][..], "does not exist"),
        (&["--batch-size", "-3"][..], "-3"),
        (&["--epochs", "many"][..], "many"),
    ] {
        let err = refused(change);
        assert!(err.contains(expect), "{change:?}: {err}");
    }
}

#[test]
fn output_folders_that_cannot_hold_a_model_are_refused_up_front() {
    let dir = tmp();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let err = refused(&["--out", &path_str(&file)]);
    assert!(
        err.contains("a-file") && err.contains("not a folder"),
        "{err}"
    );

    let nothing = dir.path().join("nothing");
    let err = refused(&[
        "--resume",
        &path_str(&nothing),
        "--out",
        &path_str(&nothing),
    ]);
    assert!(err.contains("no complete checkpoint"), "{err}");

    // Read-only: only meaningful when not running as root (root writes anyway).
    let ro = dir.path().join("read-only");
    std::fs::create_dir(&ro).unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&ro, perms).unwrap();
    if std::fs::write(ro.join("probe"), "").is_err() {
        let err = refused(&["--out", &path_str(&ro)]);
        assert!(err.contains("not writable"), "{err}");
    }
}

#[test]
fn a_full_disk_while_saving_is_a_clear_error_and_keeps_the_old_model() {
    let dir = tmp();
    let out = dir.path().join("out");
    let (quick, before) = one_epoch_model(&out);
    // The weights are written to `.model.safetensors.partial` first: point that name at
    // /dev/full, where every write fails with "No space left on device" (ENOSPC), as on a
    // full disk, without needing a mount.
    std::os::unix::fs::symlink("/dev/full", out.join(".model.safetensors.partial")).unwrap();
    let failed = run(&quick, &[]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(
        stderr.contains(".model.safetensors.partial") && stderr.contains("No space left"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        before
    );
    assert!(std::fs::symlink_metadata(out.join(".model.safetensors.partial")).is_err());
}

/// Data parallel (`--nproc 2`) resumes too: the whole job (launcher and both ranks) killed with
/// SIGKILL in epoch 2, then `--resume` with two ranks again, ends exactly where an
/// uninterrupted two-rank run ends. Every rank reads the checkpoint rank 0 wrote.
#[test]
fn a_killed_data_parallel_run_resumes_to_the_uninterrupted_result() {
    use std::os::unix::process::CommandExt;
    let dir = tmp();
    let two = |out: &Path| {
        let mut a = args(out);
        a.extend(["--nproc".to_string(), "2".to_string()]);
        a
    };
    let reference = dir.path().join("uninterrupted");
    let stdout = succeeded(&run(&two(&reference), &[]));
    assert!(stdout.contains("Data parallel: 2 ranks (Gloo)"), "{stdout}");
    assert_eq!(checkpoints(&reference), ["epoch-3"]);

    let killed = dir.path().join("killed");
    let mut child = Command::new(BIN)
        .args(two(&killed))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("the CLI starts");
    wait_for_line(&mut child, "Epoch 2 / 3");
    // SAFETY: a plain kill(2) of the process group the launcher leads (its ranks included).
    let rc = unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    assert_eq!(rc, 0);
    child.wait().unwrap();
    assert_eq!(checkpoints(&killed), ["epoch-1"]);
    assert!(
        !killed.join("model.safetensors").exists(),
        "the run was cut short"
    );

    let mut resume = two(&killed);
    resume.extend(["--resume".to_string(), path_str(&killed)]);
    let stdout = succeeded(&run(&resume, &[]));
    assert!(stdout.contains("Resuming after epoch 1 of 3"), "{stdout}");
    assert_eq!(
        stdout.matches("Resuming after").count(),
        1,
        "rank 0 alone reports: {stdout}"
    );
    assert_same_result(&reference, &killed);
}

/// Another encoder family resumes alike: a small random ModernBERT (its own layers, dropout
/// on), killed while its epoch-2 checkpoint is being written, resumes from epoch 1 to exactly
/// the uninterrupted run's history, weights and test score.
#[test]
fn a_killed_modernbert_run_resumes_to_the_uninterrupted_result() {
    use bert_finetune::data::tokenizer::BertTokenizer;
    use bert_finetune::model::{BertConfig, BertForSequenceClassification, Family};
    let dir = tmp();
    let model_dir = dir.path().join("modernbert");
    let mut config = BertConfig::new(30522, 32, 2, 2, 64);
    config.set_family(Family::ModernBert);
    config.extra.insert(
        "layer_types".into(),
        serde_json::json!(["full_attention", "sliding_attention"]),
    );
    config.extra.insert("local_attention".into(), 8.into());
    config.extra.insert("mlp_dropout".into(), 0.1.into());
    config.set_num_labels(2);
    tch::manual_seed(11);
    BertForSequenceClassification::new(&config, tch::Device::Cpu)
        .unwrap()
        .save_pretrained(
            &model_dir,
            Some(&BertTokenizer::from_dir(minilm()).unwrap()),
        )
        .unwrap();
    let with_model = |out: &Path| {
        let mut a = args(out);
        a.extend(["--model".to_string(), path_str(&model_dir)]);
        a
    };
    let reference = dir.path().join("uninterrupted");
    succeeded(&run(&with_model(&reference), &[]));
    let torn = dir.path().join("killed");
    kill_while_writing_epoch_2(&with_model(&torn), &torn);
    let mut resume = with_model(&torn);
    resume.extend(["--resume".to_string(), path_str(&torn)]);
    let stdout = succeeded(&run(&resume, &[]));
    assert!(stdout.contains("Resuming after epoch 1 of 3"), "{stdout}");
    assert_same_result(&reference, &torn);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(torn.join("config.json")).unwrap()).unwrap();
    assert_eq!(saved["model_type"], "modernbert");
}
