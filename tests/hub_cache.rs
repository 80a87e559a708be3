//! Finding `bert-base-uncased` in a Hugging Face cache, offline. Its own test binary, since it
//! sets `HF_HUB_CACHE` for the whole process.

mod common;

use bert_finetune::model::{hub, BertForSequenceClassification};
use common::*;

#[test]
fn a_model_id_is_found_in_the_hub_cache_and_a_missing_one_is_a_clear_error() {
    let cache = tmp();
    // Python's layout: models--org--name/{refs/main, snapshots/<revision>/<files>}.
    let repo = cache.path().join("models--google-bert--bert-base-uncased");
    let snapshot = repo.join("snapshots/0123abcd");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "vocab.txt",
    ] {
        std::os::unix::fs::symlink(minilm().join(f), snapshot.join(f)).unwrap();
    }
    std::env::set_var("HF_HUB_CACHE", cache.path());
    // Offline: a missing model must be an error naming the cache, not a download attempt.
    std::env::set_var("HF_HUB_OFFLINE", "1");
    std::env::remove_var("BERT_FINETUNE_MODEL");

    // The legacy id resolves to its google-bert/ home, as it does in Python.
    assert_eq!(hub::resolve("bert-base-uncased").unwrap(), snapshot);
    let choice = bert_finetune::model::choose_model();
    assert_eq!(choice.name_or_dir, "bert-base-uncased", "{choice}");
    let model =
        BertForSequenceClassification::from_pretrained("bert-base-uncased", 2, tch::Device::Cpu)
            .unwrap();
    assert_eq!(model.config.hidden_size, 384);

    let err = format!("{:#}", hub::resolve("bert-large-cased").unwrap_err());
    assert!(
        err.contains("bert-large-cased") && err.contains("local Hugging Face cache"),
        "{err}"
    );
    let err = format!("{:#}", hub::resolve("./no/such/folder").unwrap_err());
    assert!(err.contains("does not exist"), "{err}");
}
