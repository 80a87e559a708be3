//! The process group on PyTorch's c10d (TCPStore + Gloo) between real processes on this
//! machine: collectives give every rank the same answer, and a killed rank ends its peer's
//! collective with an error within the timeout instead of a hang.
//!
//! Each rank is this test binary started again with `rank_process` as its filter and the
//! variables torchrun would set; `rank_process` does nothing when run by the harness itself.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::masking::Masking;
use bert_finetune::data::split;
use bert_finetune::data::squad::features;
use bert_finetune::data::tokenizer::{BertTokenizer, Padding};
use bert_finetune::data::EncodedSet;
use bert_finetune::eval::{evaluate, evaluate_sharded, Evaluation};
use bert_finetune::model::{
    weights, BertConfig, BertForMaskedLM, BertForQuestionAnswering, BertForSequenceClassification,
    BertForTokenClassification,
};
use bert_finetune::optim::{AdamWConfig, LossScaleConfig};
use bert_finetune::runtime::distributed::{ProcessGroup, Rendezvous};
use bert_finetune::runtime::precision::Precision;
use bert_finetune::tch::{self, Kind, Tensor};
use bert_finetune::train::{TrainConfig, Trainer};

/// A small BERT without dropout, so one process and two draw nothing that differs.
fn no_dropout() -> BertConfig {
    no_dropout_of("bert")
}

/// [`no_dropout`] as a `bert` or a `modernbert` (MiniLM's vocabulary; two layers, so that
/// ModernBERT has a full-attention one and a sliding one, a window of 8).
fn no_dropout_of(model_type: &str) -> BertConfig {
    let mut c = BertConfig::new(30522, 32, 1, 2, 64);
    if model_type == "modernbert" {
        c.num_hidden_layers = 2;
        c.set_family(bert_finetune::model::Family::from_model_type(model_type).unwrap());
        c.extra.insert(
            "layer_types".into(),
            serde_json::json!(["full_attention", "sliding_attention"]),
        );
        c.extra.insert("local_attention".into(), 8.into());
    }
    c.set_num_labels(2);
    c.hidden_dropout_prob = 0.0;
    c.attention_probs_dropout_prob = 0.0;
    c
}

/// 96 CoLA sentences to train on (3 global batches of 32), batched at their longest.
fn sets() -> (EncodedSet, EncodedSet) {
    let tokenizer = BertTokenizer::from_dir(common::minilm()).unwrap();
    split::train_validation(
        &tokenizer,
        bert_finetune::runtime::settings::cola_dir(),
        64,
        Padding::Longest,
        42,
        Some(96),
    )
    .unwrap()
}

fn data_parallel_config(batch_size: usize) -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch_size,
        optimizer: AdamWConfig {
            lr: 1e-3,
            weight_decay: 0.01,
            ..AdamWConfig::default()
        },
        ..TrainConfig::default()
    }
}

/// [`dropout_config`]'s three epochs in fp16, from a loss scale of 2^20 that overflows the first
/// steps, growing again after every 2 clean steps.
fn fp16_config(batch_size: usize) -> TrainConfig {
    TrainConfig {
        precision: Precision::Fp16,
        loss_scale: LossScaleConfig {
            init_scale: 2f64.powi(20),
            growth_interval: 2,
            ..LossScaleConfig::default()
        },
        ..dropout_config(batch_size)
    }
}

/// [`no_dropout`]'s BERT with BERT's dropout (0.1) back on.
fn with_dropout() -> BertConfig {
    let mut c = no_dropout();
    c.hidden_dropout_prob = 0.1;
    c.attention_probs_dropout_prob = 0.1;
    c
}

/// Three epochs of [`data_parallel_config`].
fn dropout_config(batch_size: usize) -> TrainConfig {
    TrainConfig {
        epochs: 3,
        ..data_parallel_config(batch_size)
    }
}

/// Each epoch's training loss, validation loss and validation accuracy.
fn epoch_figures(history: &bert_finetune::train::History) -> serde_json::Value {
    history
        .epochs
        .iter()
        .map(|e| serde_json::json!([e.train_loss, e.val_loss, e.val_accuracy]))
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// This test binary as rank `rank` of `world` running `scenario` (see [`rank_process`]), with
/// torchrun's variables and a 20 s collective timeout; callers may add or override variables.
fn rank_command(scenario: &str, rank: usize, world: usize, port: u16) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["rank_process", "--exact", "--nocapture", "--test-threads=1"])
        .env("BF_TEST_SCENARIO", scenario)
        .env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("BERT_FINETUNE_DIST_TIMEOUT", "20")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn spawn_rank(scenario: &str, rank: usize, world: usize, port: u16) -> Child {
    rank_command(scenario, rank, world, port).spawn().unwrap()
}

/// One rank's part; the scenario and the rendezvous come from the environment.
#[test]
fn rank_process() {
    let Ok(scenario) = std::env::var("BF_TEST_SCENARIO") else {
        return; // started by the harness, not as a rank
    };
    let group = ProcessGroup::from_env().unwrap().expect("WORLD_SIZE > 1");
    let rank = group.rank() as f64;
    match scenario.as_str() {
        "collectives" => {
            let a = Tensor::full([4], rank + 1.0, (Kind::Float, tch::Device::Cpu));
            let b = Tensor::full([2, 3], 10.0 * (rank + 1.0), (Kind::Float, tch::Device::Cpu));
            group
                .all_reduce_sum(&[a.shallow_clone(), b.shallow_clone()])
                .unwrap();
            let c = Tensor::full([3], rank, (Kind::Float, tch::Device::Cpu));
            group.broadcast(&c, 1).unwrap();
            let gathered = group
                .all_gather(&Tensor::from_slice(&[rank as f32, rank as f32 * 2.0]))
                .unwrap();
            group.barrier().unwrap();
            let flat = |t: &Tensor| Vec::<f32>::try_from(t.reshape([-1])).unwrap();
            println!(
                "RESULT {}",
                serde_json::json!({
                    "a": flat(&a), "b": flat(&b), "c": flat(&c), "gathered": flat(&gathered),
                    "collectives": group.collectives(),
                })
            );
        }
        "until_error" => {
            let t = Tensor::ones([1024], (Kind::Float, tch::Device::Cpu));
            let mut rounds = 0;
            loop {
                if let Err(e) = group.all_reduce_sum(&[t.shallow_clone()]) {
                    eprintln!("ERROR {e:#}");
                    std::process::exit(3);
                }
                rounds += 1;
                if rounds == 1 {
                    println!("READY");
                }
                if rounds > 3000 {
                    std::process::exit(4); // a minute without losing the peer: never linger
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        "train" => {
            // Rank r starts from another seed: the broadcast must give it rank 0's weights.
            tch::manual_seed(5 + group.rank() as i64);
            let family = std::env::var("BF_TEST_FAMILY").unwrap_or_else(|_| "bert".into());
            let model =
                BertForSequenceClassification::new(&no_dropout_of(&family), tch::Device::Cpu)
                    .unwrap();
            let (train_set, val_set) = sets();
            let mut trainer = Trainer::new(model, data_parallel_config(16), train_set, val_set)
                .unwrap()
                .with_process_group(group)
                .unwrap();
            let before = trainer.process_group().unwrap().collectives();
            trainer.train_epoch(1).unwrap();
            let collectives = trainer.process_group().unwrap().collectives() - before;
            let validated = trainer.validate().unwrap(); // sharded, gathered
            let history = trainer.history().clone();
            if std::env::var("RANK").as_deref() == Ok("0") {
                let out = std::env::var("BF_TEST_OUT").unwrap();
                weights::save(
                    &trainer.model().named_parameters(),
                    std::path::Path::new(&out),
                )
                .unwrap();
            }
            println!(
                "RESULT {}",
                serde_json::json!({
                    "batch_losses": history.batch_losses,
                    "val_loss": validated.loss,
                    "val_logits": validated.logits,
                    "collectives": collectives,
                    "tensors": trainer.optimizer().num_tensors(),
                })
            );
        }
        "train_fp16" => {
            tch::manual_seed(5 + group.rank() as i64);
            let model =
                BertForSequenceClassification::new(&no_dropout(), tch::Device::Cpu).unwrap();
            let (train_set, val_set) = sets();
            let mut trainer = Trainer::new(model, fp16_config(16), train_set, val_set)
                .unwrap()
                .with_process_group(group)
                .unwrap();
            let history = trainer.fit().unwrap();
            let weights: f64 = trainer
                .model()
                .named_parameters()
                .iter()
                .map(|(_, t)| t.abs().sum(Kind::Double).double_value(&[]))
                .sum();
            let scale = trainer.optimizer().loss_scaler().map(|s| s.scale());
            println!(
                "RESULT {}",
                serde_json::json!({
                    "skipped_steps": history.skipped_steps,
                    "batch_losses": history.batch_losses,
                    "scale": scale,
                    "weights": weights,
                })
            );
        }
        "train_dropout" => {
            // As the CLI does: every rank seeds alike (transformers' `set_seed` on each rank).
            tch::manual_seed(5);
            let model =
                BertForSequenceClassification::new(&with_dropout(), tch::Device::Cpu).unwrap();
            let (train_set, val_set) = sets();
            let mut trainer = Trainer::new(model, dropout_config(16), train_set, val_set)
                .unwrap()
                .with_process_group(group)
                .unwrap();
            let history = trainer.fit().unwrap();
            println!("RESULT {}", epoch_figures(&history));
        }
        "evaluate_heads" => {
            // Every rank builds the same random heads; each scores the sets alone and shared.
            let tokenizer = BertTokenizer::from_dir(common::minilm()).unwrap();
            let (words, tags) = common::tags::tagged(37, 0);
            let tag_set =
                EncodedSet::tagged(&tokenizer, &words, &tags, 48, Padding::Longest, None).unwrap();
            let questions = common::questions::examples(13, 0);
            let windows = features(&tokenizer, &questions, 64, 16).unwrap();
            let span_set = EncodedSet::windows(&windows, tokenizer.pad_id, 64, Padding::Longest);
            let mut config = no_dropout();
            let names: Vec<String> = common::tags::TAGS.iter().map(|t| t.to_string()).collect();
            config.set_labels(&names);
            tch::manual_seed(5);
            let tagger = BertForTokenClassification::new(&config, tch::Device::Cpu).unwrap();
            let reader = BertForQuestionAnswering::new(&config, tch::Device::Cpu).unwrap();
            let both = |alone: Evaluation, shared: Evaluation| {
                let (a, b) = (alone.span_logits(), shared.span_logits());
                let widest =
                    a.0.iter()
                        .zip(&b.0)
                        .chain(a.1.iter().zip(&b.1))
                        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
                        .fold(0.0f32, f32::max);
                serde_json::json!({
                    "alone": {"loss": alone.loss, "metrics": alone.metrics(),
                              "preds": format!("{:?}", alone.preds)},
                    "shared": {"loss": shared.loss, "metrics": shared.metrics(),
                               "preds": format!("{:?}", shared.preds)},
                    "span_logits_rows": [a.0.len(), b.0.len()],
                    "span_logit_difference": widest,
                })
            };
            let tags = both(
                evaluate(&tagger, &tag_set, 8, Precision::Fp32).unwrap(),
                evaluate_sharded(&tagger, &tag_set, 8, Precision::Fp32, &group).unwrap(),
            );
            let spans = both(
                evaluate(&reader, &span_set, 8, Precision::Fp32).unwrap(),
                evaluate_sharded(&reader, &span_set, 8, Precision::Fp32, &group).unwrap(),
            );
            // Masked LM: 37 CoLA sentences (odd, so the last rank's share wraps around),
            // masked once; its tokens are scored per masked token and gathered.
            let cola = Cola::load_split(bert_finetune::runtime::settings::cola_dir(), Split::Train)
                .unwrap();
            let texts = cola.sentences()[..37].to_vec();
            let masking = Masking::for_tokenizer(0.15, &tokenizer, 30522).unwrap();
            let mlm_set =
                EncodedSet::for_masked_lm(&tokenizer, &texts, 48, Padding::Longest, masking)
                    .unwrap()
                    .masked(42);
            let mut mlm_config = no_dropout();
            mlm_config.set_num_labels(2);
            let filler = BertForMaskedLM::new(&mlm_config, tch::Device::Cpu).unwrap();
            let tokens = both(
                evaluate(&filler, &mlm_set, 8, Precision::Fp32).unwrap(),
                evaluate_sharded(&filler, &mlm_set, 8, Precision::Fp32, &group).unwrap(),
            );
            println!(
                "RESULT {}",
                serde_json::json!({"tags": tags, "spans": spans, "tokens": tokens})
            );
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn result_of(child: Child) -> serde_json::Value {
    let stdout = common::succeeded(&child.wait_with_output().unwrap());
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, json)| json))
        .unwrap_or_else(|| panic!("no result in {stdout}"));
    serde_json::from_str(line).unwrap()
}

#[test]
fn two_gloo_ranks_agree_on_every_collective() {
    let port = free_port();
    let ranks: Vec<Child> = (0..2)
        .map(|r| spawn_rank("collectives", r, 2, port))
        .collect();
    let results: Vec<serde_json::Value> = ranks.into_iter().map(result_of).collect();
    for r in &results {
        assert_eq!(
            r["a"],
            serde_json::json!([3.0, 3.0, 3.0, 3.0]),
            "1 + 2 on each rank"
        );
        assert_eq!(
            r["b"],
            serde_json::json!([30.0, 30.0, 30.0, 30.0, 30.0, 30.0]),
            "two tensors, one all-reduce"
        );
        assert_eq!(
            r["c"],
            serde_json::json!([1.0, 1.0, 1.0]),
            "rank 1's values"
        );
        assert_eq!(
            r["gathered"],
            serde_json::json!([0.0, 0.0, 1.0, 2.0]),
            "rank order"
        );
        assert_eq!(r["collectives"], 4);
    }
}

/// Two ranks score token classification and question answering as one process does: each
/// runs the model over its share (37 sentences and 13 questions' windows, so the shares are
/// padded), the logits gather across the batches' different widths, and the loss, the
/// predictions, the entity figures and the span logits equal a single process's.
#[test]
fn two_ranks_score_tags_spans_and_masked_tokens_as_one_process() {
    let port = free_port();
    let ranks: Vec<Child> = (0..2)
        .map(|r| spawn_rank("evaluate_heads", r, 2, port))
        .collect();
    for result in ranks.into_iter().map(result_of) {
        for task in ["tags", "spans", "tokens"] {
            let r = &result[task];
            assert_eq!(r["alone"]["preds"], r["shared"]["preds"], "{task}");
            let (a, b) = (
                r["alone"]["loss"].as_f64().unwrap(),
                r["shared"]["loss"].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 1e-5, "{task}: loss {a} alone, {b} shared");
            // Relative: masked-LM perplexity is exp(loss), about 3e4 for this random model, so
            // losses that differ by float rounding (2e-8) give perplexities 6e-4 apart.
            for (k, v) in r["alone"]["metrics"].as_object().unwrap() {
                let (v, w) = (
                    v.as_f64().unwrap(),
                    r["shared"]["metrics"][k].as_f64().unwrap(),
                );
                assert!(
                    (v - w).abs() < 1e-5 * v.abs().max(1.0),
                    "{task} {k}: {v} vs {w}"
                );
            }
            assert_eq!(r["span_logits_rows"][0], r["span_logits_rows"][1]);
            assert!(
                r["span_logit_difference"].as_f64().unwrap() < 1e-4,
                "{task}: {r}"
            );
        }
        assert!(
            result["tags"]["alone"]["metrics"]["f1"].is_number(),
            "entity figures: {result}"
        );
        let perplexity = &result["tokens"]["alone"]["metrics"]["perplexity"];
        assert!(
            perplexity.as_f64().is_some_and(|p| p > 1.0),
            "masked-LM figures: {result}"
        );
    }
}

/// Killing one rank ends the other's collective with an error naming what failed, within
/// the timeout (20 s here), and leaves no process behind.
#[test]
fn a_killed_rank_ends_its_peer_with_an_error() {
    let port = free_port();
    let mut survivor = spawn_rank("until_error", 0, 2, port);
    let mut victim = spawn_rank("until_error", 1, 2, port);
    let stdout = survivor.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("READY"));
    assert!(ready, "rank 0 finished its first all-reduce");
    let killed_at = Instant::now();
    victim.kill().unwrap();
    victim.wait().unwrap();
    let deadline = Duration::from_secs(30);
    let status = loop {
        if let Some(s) = survivor.try_wait().unwrap() {
            break s;
        }
        if killed_at.elapsed() > deadline {
            let _ = survivor.kill();
            panic!("the surviving rank still waits {deadline:?} after its peer died");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut survivor.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("all_reduce on rank 0 of 2: a peer has stopped or is unreachable"),
        "{stderr}"
    );
    eprintln!(
        "the survivor stopped {:.1} s after its peer was killed",
        killed_at.elapsed().as_secs_f64()
    );
}

#[test]
fn the_rendezvous_reads_torchruns_variables() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(Rendezvous::from_vars(vars(&[])).unwrap(), None);
    assert_eq!(
        Rendezvous::from_vars(vars(&[("WORLD_SIZE", "1")])).unwrap(),
        None
    );
    // A one-rank group on request (a machine with one GPU checks the NCCL path so).
    let one = Rendezvous::from_vars(vars(&[("BERT_FINETUNE_DIST", "1")]))
        .unwrap()
        .unwrap();
    assert_eq!((one.rank, one.world_size), (0, 1));
    let r = Rendezvous::from_vars(vars(&[
        ("WORLD_SIZE", "4"),
        ("RANK", "3"),
        ("LOCAL_RANK", "1"),
        ("MASTER_ADDR", "10.0.0.2"),
        ("MASTER_PORT", "29400"),
        ("TORCHELASTIC_USE_AGENT_STORE", "True"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(
        (r.rank, r.world_size, r.local_rank, r.master_port),
        (3, 4, 1, 29400)
    );
    assert!(r.store_hosted);
    for (bad, needle) in [
        (&[("WORLD_SIZE", "2")][..], "RANK is not"),
        (
            &[("WORLD_SIZE", "2"), ("RANK", "2")][..],
            "RANK=2 is not below WORLD_SIZE=2",
        ),
        (&[("WORLD_SIZE", "two")][..], "WORLD_SIZE=\"two\""),
        (&[("WORLD_SIZE", "0")][..], "WORLD_SIZE=0"),
        (
            &[("BERT_FINETUNE_DIST", "yes")][..],
            "BERT_FINETUNE_DIST=\"yes\"",
        ),
        (
            &[("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_PORT", "70000")][..],
            "MASTER_PORT=70000",
        ),
    ] {
        let owned: Vec<(String, String)> = bad
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let err =
            Rendezvous::from_vars(|k| owned.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
                .unwrap_err();
        assert!(format!("{err}").contains(needle), "{err}");
    }
}

/// torchrun launches the ranks (`--no-python`), its agent hosting the store
/// (`TORCHELASTIC_USE_AGENT_STORE=True`): every rank connects as a client and the collectives
/// agree as above.
#[test]
fn torchrun_launches_two_ranks_around_its_agents_store() {
    let torchrun = bert_finetune::runtime::settings::project_dir().join(".venv/bin/torchrun");
    let port = free_port();
    let out = Command::new(&torchrun)
        .args([
            "--no-python",
            "--nproc-per-node",
            "2",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            &port.to_string(),
        ])
        .arg(std::env::current_exe().unwrap())
        .args(["rank_process", "--exact", "--nocapture", "--test-threads=1"])
        .env("BF_TEST_SCENARIO", "collectives")
        .env("BERT_FINETUNE_DIST_TIMEOUT", "30")
        .output()
        .unwrap();
    let stdout = common::succeeded(&out);
    let results: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| {
            l.split_once("RESULT ")
                .map(|(_, j)| serde_json::from_str(j).unwrap())
        })
        .collect();
    assert_eq!(results.len(), 2, "{stdout}");
    for r in &results {
        assert_eq!(r["a"], serde_json::json!([3.0, 3.0, 3.0, 3.0]));
        assert_eq!(r["gathered"], serde_json::json!([0.0, 0.0, 1.0, 2.0]));
    }
}

/// Two Gloo ranks of 16 sentences a step train the weights one process trains with 32
/// (dropout off; ≤ 1e-5 after 3 steps), with the same logged losses, one all-reduce per step
/// whatever the number of parameter tensors, and the same validation figures from a
/// validation shared between them.
#[test]
fn two_ranks_of_16_train_as_one_process_of_32() {
    ranks_train_as_one_process("bert");
}

/// The same with ModernBERT, whose layers are not BERT's (pre-norm, RoPE, a sliding window).
#[test]
fn two_modernbert_ranks_of_16_train_as_one_process_of_32() {
    ranks_train_as_one_process("modernbert");
}

/// Two ranks of 16 sentences a batch against one process of 32, for a `model_type`: the same
/// weights after 3 steps, the same logged losses and validation.
fn ranks_train_as_one_process(family: &str) {
    let dir = common::tmp();
    let out = dir.path().join("rank0.safetensors");
    let port = free_port();
    let ranks: Vec<Child> = (0..2)
        .map(|r| {
            rank_command("train", r, 2, port)
                .env("BF_TEST_FAMILY", family)
                .env("BF_TEST_OUT", &out)
                .env("BERT_FINETUNE_DIST_TIMEOUT", "60")
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<serde_json::Value> = ranks.into_iter().map(result_of).collect();

    tch::manual_seed(5);
    let model =
        BertForSequenceClassification::new(&no_dropout_of(family), tch::Device::Cpu).unwrap();
    let (train_set, val_set) = sets();
    let mut single = Trainer::new(model, data_parallel_config(32), train_set, val_set).unwrap();
    single.train_epoch(1).unwrap();
    let validated = single.validate().unwrap();
    let tensors: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&out)
        .unwrap()
        .into_iter()
        .collect();
    let mut worst = 0.0f64;
    for (name, ours) in single.model().named_parameters() {
        let theirs = &tensors[&name];
        let diff = (&ours - theirs).abs().max().double_value(&[]);
        worst = worst.max(diff);
        assert!(diff <= 1e-5, "{name}: {diff}");
    }
    eprintln!("largest weight difference after 3 steps, 2 ranks vs 1 process: {worst:e}");
    let single_losses = &single.history().batch_losses;
    assert_eq!(single_losses.len(), 3);
    for r in &results {
        let losses: Vec<f64> = serde_json::from_value(r["batch_losses"].clone()).unwrap();
        for (a, b) in losses.iter().zip(single_losses) {
            assert!((a - b).abs() < 1e-5, "logged loss {a} vs {b}");
        }
        // 3 steps, one all-reduce each, and one for the epoch's losses; the model has
        // `tensors` parameter tensors.
        assert_eq!(r["collectives"], 4, "{r}");
        assert_eq!(
            r["tensors"].as_u64().unwrap() as usize,
            single.model().named_parameters().len()
        );
        eprintln!(
            "collectives for 3 steps: {} (one all-reduce a step, one for the epoch's losses), \
             for {} parameter tensors",
            r["collectives"], r["tensors"]
        );
        // Validation shared between the ranks scores the whole set as one process does.
        let loss = r["val_loss"].as_f64().unwrap();
        assert!(
            (loss - validated.loss).abs() < 1e-6,
            "{loss} vs {}",
            validated.loss
        );
        let logits: Vec<Vec<f32>> = serde_json::from_value(r["val_logits"].clone()).unwrap();
        assert_eq!(logits.len(), validated.logits.len());
        for (a, b) in logits
            .iter()
            .flatten()
            .zip(validated.logits.iter().flatten())
        {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}

/// fp16 with loss scaling across two ranks: the gradients are summed before they are unscaled,
/// so an inf on either rank reaches both, and both skip the same steps, keep the same scale
/// and end with the same weights (a rank that stepped alone would drift from its peer).
#[test]
fn two_fp16_ranks_skip_the_same_steps_and_keep_one_scale() {
    let port = free_port();
    let ranks: Vec<Child> = (0..2)
        .map(|r| {
            rank_command("train_fp16", r, 2, port)
                .env("BERT_FINETUNE_DIST_TIMEOUT", "60")
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<serde_json::Value> = ranks.into_iter().map(result_of).collect();
    let skipped: Vec<usize> = serde_json::from_value(results[0]["skipped_steps"].clone()).unwrap();
    let losses: Vec<f64> = serde_json::from_value(results[0]["batch_losses"].clone()).unwrap();
    eprintln!(
        "fp16, 2 ranks: skipped steps {skipped:?} of {}, final scale {}",
        losses.len(),
        results[0]["scale"]
    );
    assert!(
        !skipped.is_empty() && skipped.len() < losses.len(),
        "a scale of 2^20 overflows some steps, not all: {skipped:?}"
    );
    for key in ["skipped_steps", "batch_losses", "scale", "weights"] {
        assert_eq!(results[0][key], results[1][key], "{key}");
    }
    // The logged losses are the mean over both ranks, so training moved them.
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
}

/// With dropout on, two ranks of 16 and one process of 32 draw different dropout masks (each
/// rank draws for its own 16 rows, from the same seed), so their figures differ, but by less
/// than one process differs from itself under another seed (which reorders the batches and
/// redraws dropout).
#[test]
fn with_dropout_two_ranks_track_one_process_closer_than_another_seed() {
    let port = free_port();
    let ranks: Vec<Child> = (0..2)
        .map(|r| {
            rank_command("train_dropout", r, 2, port)
                .env("BERT_FINETUNE_DIST_TIMEOUT", "60")
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<serde_json::Value> = ranks.into_iter().map(result_of).collect();
    assert_eq!(
        results[0], results[1],
        "every rank reports the same figures"
    );
    // The Trainer seeds its sampler and dropout from `TrainConfig::seed` every epoch.
    let single = |seed: u64| {
        tch::manual_seed(5);
        let model = BertForSequenceClassification::new(&with_dropout(), tch::Device::Cpu).unwrap();
        let (train_set, val_set) = sets();
        let config = TrainConfig {
            seed,
            ..dropout_config(32)
        };
        let mut trainer = Trainer::new(model, config, train_set, val_set).unwrap();
        epoch_figures(&trainer.fit().unwrap())
    };
    let (one, other_seed) = (single(42), single(43));
    let figures =
        |v: &serde_json::Value| -> Vec<Vec<f64>> { serde_json::from_value(v.clone()).unwrap() };
    let (dp, one, other_seed) = (figures(&results[0]), figures(&one), figures(&other_seed));
    let largest = |a: &[Vec<f64>], b: &[Vec<f64>], k: usize| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x[k] - y[k]).abs())
            .fold(0.0, f64::max)
    };
    for (k, name) in ["training loss", "validation loss", "validation accuracy"]
        .iter()
        .enumerate()
    {
        let (ranks, seed) = (largest(&dp, &one, k), largest(&other_seed, &one, k));
        eprintln!(
            "{name}: 2 ranks vs 1 process differ by up to {ranks:.4}, another seed by {seed:.4}"
        );
    }
    eprintln!("2 ranks: {dp:?}\n1 process: {one:?}\nother seed: {other_seed:?}");
    assert!(
        largest(&dp, &one, 0) > 0.0,
        "dropout draws differ, so the losses must"
    );
    for k in [0, 1] {
        let (ranks, seed) = (largest(&dp, &one, k), largest(&other_seed, &one, k));
        assert!(
            ranks < seed,
            "2 ranks differ from 1 process by {ranks}, another seed by {seed}"
        );
    }
}

/// `bert-finetune train` on 64 CoLA sentences, under `launcher` (a program and its
/// arguments, before the binary) or directly, with `extra` arguments; returns its history.
fn cli_train(launcher: &[String], extra: &[&str], out: &std::path::Path) -> serde_json::Value {
    cli_train_with(launcher, extra, out, &[])
}

/// [`cli_train`] with more environment variables for the command.
fn cli_train_with(
    launcher: &[String],
    extra: &[&str],
    out: &std::path::Path,
    envs: &[(&str, String)],
) -> serde_json::Value {
    let binary = env!("CARGO_BIN_EXE_bert-finetune");
    let mut cmd = match launcher.split_first() {
        None => Command::new(binary),
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(binary);
            c
        }
    };
    let run = cmd
        .args(["train", "--model"])
        .arg(common::minilm())
        .args([
            "--limit",
            "64",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .env("HF_HUB_OFFLINE", "1")
        .env("BERT_FINETUNE_DIST_TIMEOUT", "120")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stdout = common::succeeded(&run);
    assert!(
        stdout.contains("Data parallel: 2 ranks (Gloo), 16 sentences per step")
            || stdout.contains("Data parallel: 1 rank (Gloo), 8 sentences per step"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("training samples").count(),
        1,
        "rank 0 alone prints the set-up: {stdout}"
    );
    assert_eq!(
        stdout.matches("Predicting labels for").count(),
        1,
        "rank 0 alone reports: {stdout}"
    );
    assert!(out.join("model.safetensors").is_file());
    assert!(out.join("checkpoints/epoch-1/state.json").is_file());
    serde_json::from_str(&std::fs::read_to_string(out.join("history.json")).unwrap()).unwrap()
}

/// `BERT_FINETUNE_DIST=1` makes a single process a one-rank group (what `scripts/gpu-check`
/// runs over NCCL on one GPU): it trains through the data-parallel path (flat gradients, one
/// all-reduce a step) to the batch losses of a plain run, up to float rounding.
#[test]
fn a_one_rank_group_trains_as_a_single_process() {
    let dir = common::tmp();
    let plain = common::cli(&["train", "--model"])
        .arg(common::minilm())
        .args([
            "--limit",
            "64",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--out",
        ])
        .arg(dir.path().join("plain"))
        .output()
        .unwrap();
    common::succeeded(&plain);
    let plain: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("plain/history.json")).unwrap(),
    )
    .unwrap();
    let one = cli_train_with(
        &[],
        &[],
        &dir.path().join("one-rank"),
        &[
            ("BERT_FINETUNE_DIST", "1".to_string()),
            ("MASTER_PORT", free_port().to_string()),
        ],
    );
    let losses = |h: &serde_json::Value| -> Vec<f64> {
        serde_json::from_value(h["batch_losses"].clone()).unwrap()
    };
    let (a, b) = (losses(&plain), losses(&one));
    assert_eq!(a.len(), 8);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-5, "batch loss {x} vs {y}");
    }
}

/// `bert-finetune train --nproc 2` and `torchrun --no-python --nproc-per-node 2
/// bert-finetune train` run the same data-parallel training (the same batch losses), rank 0
/// alone reporting and writing the model, history and checkpoint.
#[test]
fn the_cli_trains_data_parallel_by_nproc_and_by_torchrun() {
    let dir = common::tmp();
    let by_nproc = cli_train(&[], &["--nproc", "2"], &dir.path().join("nproc"));
    let torchrun = bert_finetune::runtime::settings::project_dir().join(".venv/bin/torchrun");
    let launcher: Vec<String> = vec![
        torchrun.display().to_string(),
        "--no-python".into(),
        "--nproc-per-node".into(),
        "2".into(),
        "--master-addr".into(),
        "127.0.0.1".into(),
        "--master-port".into(),
        free_port().to_string(),
    ];
    let by_torchrun = cli_train(&launcher, &[], &dir.path().join("torchrun"));
    // 64 training sentences in global batches of 16: 4 steps, the same on both launchers.
    assert_eq!(by_nproc["batch_losses"].as_array().unwrap().len(), 4);
    assert_eq!(by_nproc["batch_losses"], by_torchrun["batch_losses"]);
}

/// The NCCL group is compiled in wherever the CUDA wheel's libtorch and headers are (here and
/// in CI, without a GPU); it runs where a GPU is lent (`scripts/gpu-check`).
#[test]
fn the_nccl_group_is_built_in() {
    assert!(
        ProcessGroup::nccl_available(),
        "build.rs found no NCCL or CUDA headers beside the wheel (see its warning)"
    );
}
