//! CoLA 1.1 as the tutorial sees it, and the errors a damaged copy produces.

use std::io::Write;
use std::path::Path;

use bert_finetune::data::archive;
use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::runtime::display::Rich;

fn data() -> std::path::PathBuf {
    bert_finetune::runtime::settings::cola_dir()
}

#[test]
fn split_sizes_match_the_release() {
    let sizes: Vec<usize> = Split::ALL
        .iter()
        .map(|s| Cola::load_split(data(), *s).unwrap().len())
        .collect();
    assert_eq!(sizes, vec![8551, 527, 516]);
}

#[test]
fn label_balance_matches_the_tutorial() {
    let train = Cola::load_split(data(), Split::Train)
        .unwrap()
        .label_counts();
    assert_eq!((train.ones, train.zeros), (6023, 2528));
    let ood = Cola::load_split(data(), Split::OutOfDomainDev)
        .unwrap()
        .label_counts();
    assert_eq!((ood.ones, ood.zeros), (354, 162));
    assert!(ood.to_string().contains("354 of 516 (68.60%)"), "{ood}");
}

#[test]
fn quotes_inside_sentences_survive() {
    let train = Cola::load_split(data(), Split::Train).unwrap();
    let sentences = train.sentences();
    assert!(sentences
        .iter()
        .any(|s| s == "Susan whispered \"Shut up\"."));
    assert_eq!(
        sentences[0],
        "Our friends won't buy this analysis, let alone the next one we propose."
    );
    assert_eq!(train.labels().len(), 8551);
}

#[test]
fn sample_is_seeded_and_renders_as_html() {
    let train = Cola::load_split(data(), Split::Train).unwrap();
    let a = train.sample(10, 42);
    let b = train.sample(10, 42);
    let c = train.sample(10, 7);
    assert_eq!(a.0.height(), 10);
    assert!(a.0.equals_missing(&b.0));
    assert!(!a.0.equals_missing(&c.0));
    let html = a.html().unwrap().0;
    assert!(html.starts_with("<table") && html.contains("<th>sentence</th>"));
    let unacceptable = train.with_label(0, 5);
    let sentences = unacceptable
        .0
        .column("sentence")
        .unwrap()
        .str()
        .unwrap()
        .clone();
    assert!(sentences.iter().all(|s| !s.unwrap().is_empty()));
    assert!(unacceptable
        .0
        .column("label")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .all(|l| l == 0));
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn error_of(path: &Path) -> String {
    format!("{:#}", Cola::load(path).unwrap_err())
}

#[test]
fn wrong_column_count_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.tsv",
        "gj04\t1\t\tFine.\ngj04\t1\tOnly three\n",
    );
    let err = error_of(&path);
    assert!(err.contains("bad.tsv") && err.contains("line 2"), "{err}");
    assert!(err.contains("found 3"), "{err}");
}

#[test]
fn bad_label_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "labels.tsv",
        "a\t1\t\tOk.\nb\t0\t*\tNo.\nc\t2\t\tHuh.\n",
    );
    let err = error_of(&path);
    assert!(
        err.contains("labels.tsv") && err.contains("line 3"),
        "{err}"
    );
    assert!(err.contains("label must be 0 or 1"), "{err}");
}

#[test]
fn empty_and_missing_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.tsv", "");
    let err = error_of(&empty);
    assert!(err.contains("empty.tsv") && err.contains("empty"), "{err}");
    let err = error_of(&dir.path().join("missing.tsv"));
    assert!(
        err.contains("missing.tsv") && err.contains("cannot read"),
        "{err}"
    );
}

fn make_zip(path: &Path, entries: &[(&str, String)]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    for (name, body) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn zip_slip_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("evil.zip");
    make_zip(&zip_path, &[("../../escaped.txt", "gotcha".to_string())]);
    let dest = dir.path().join("inner/data");
    let err = format!("{:#}", archive::extract(&zip_path, &dest).unwrap_err());
    assert!(err.contains("evil.zip") && err.contains("outside"), "{err}");
    assert!(!dir.path().join("escaped.txt").exists());
    assert!(!dest.join("cola_public").exists());
}

#[test]
fn a_download_that_does_not_match_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let real = data();
    let read = |s: Split| std::fs::read_to_string(real.join(s.relative_path())).unwrap();
    let truncated: String = read(Split::Train)
        .lines()
        .take(100)
        .map(|l| format!("{l}\n"))
        .collect();
    let zip_path = dir.path().join("cola_public_1.1.zip");
    make_zip(
        &zip_path,
        &[
            ("cola_public/raw/in_domain_train.tsv", truncated),
            (
                "cola_public/raw/in_domain_dev.tsv",
                read(Split::InDomainDev),
            ),
            (
                "cola_public/raw/out_of_domain_dev.tsv",
                read(Split::OutOfDomainDev),
            ),
        ],
    );
    let dest = dir.path().join("data");
    let err = format!("{:#}", archive::extract(&zip_path, &dest).unwrap_err());
    assert!(
        err.contains("in_domain_train.tsv") && err.contains("expected 8551"),
        "{err}"
    );
    assert!(!dest.join("cola_public").exists());

    let not_zip = write(dir.path(), "garbage.zip", "this is not a zip");
    let err = format!("{:#}", archive::extract(&not_zip, &dest).unwrap_err());
    assert!(err.contains("garbage.zip"), "{err}");
}

#[test]
fn the_shared_release_zip_unpacks_and_verifies() {
    let Some(zip_path) = std::env::var_os("COLA_ZIP") else {
        return; // The setup already verified the user's download; nothing more to check here.
    };
    let dir = tempfile::tempdir().unwrap();
    let out = archive::extract(Path::new(&zip_path), dir.path()).unwrap();
    archive::verify(&out).unwrap();
}
